"""Acknowledging findings of cdk-nag and checkov, each with its reason beside it."""

from __future__ import annotations

import jsii
from aws_cdk import Acknowledgment, CfnResource, IAspect, Validations

from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one cdk-nag finding on `scope` (and what it contains), saying why."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def checkov_skip(scope: IConstruct, **reasons: str) -> None:
    """Skip checkov checks on the CloudFormation resource behind `scope`, with reasons.

    checkov reads `Metadata.checkov.skip` of a resource; `scope` is either that resource
    or an L2 construct whose default child is.
    """
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to annotate")
    existing = resource.get_metadata("checkov") or {"skip": []}
    skips = list(existing["skip"]) + [
        {"id": check, "comment": reason} for check, reason in sorted(reasons.items())
    ]
    resource.add_metadata("checkov", {"skip": skips})


LOG_GROUP_KMS_REASON = (
    "CloudWatch Logs encrypts every log group at rest with a service-managed key; access is "
    "governed by IAM on the /<prefix>/ log-group names. A customer-managed key would bill "
    "every month while the platform is idle and add no control IAM does not already give."
)

# Checkov's Lambda checks, answered for the handlers CDK itself adds to run custom
# resources (S3 auto-delete, default security group restriction, ...).
_CDK_PROVIDER_LAMBDA_SKIPS = {
    "CKV_AWS_115": "CDK-managed custom-resource handler: CloudFormation invokes it once per "
    "resource change, so its concurrency is bounded by the deployment itself.",
    "CKV_AWS_116": "CDK-managed custom-resource handler: CloudFormation invokes it synchronously "
    "and reports a failure in the stack event; a DLQ would never receive anything.",
    "CKV_AWS_117": "CDK-managed custom-resource handler that only calls AWS APIs; inside the VPC "
    "it would need a NAT gateway or endpoints (idle cost) to reach them.",
    "CKV_AWS_173": "CDK-managed custom-resource handler: its environment holds no secrets.",
}


_CDK_PROVIDER_PATHS = (
    "CustomResourceProvider",
    "/Provider/",
    "Custom::CDKECRDeployment",
    "Custom::CDKBucketDeployment",
)


@jsii.implements(IAspect)
class CdkProviderCheckovSkips:
    """Adds the reasons above to every Lambda function CDK created for a custom resource."""

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, CfnResource)
            and node.cfn_resource_type == "AWS::Lambda::Function"
            and any(marker in node.node.path for marker in _CDK_PROVIDER_PATHS)
        ):
            checkov_skip(node, **_CDK_PROVIDER_LAMBDA_SKIPS)


def nag_text(scope: IConstruct, value: str) -> str:
    """How cdk-nag spells a (possibly tokenized) string in a finding id.

    Finding ids embed resource ARNs; tokens appear as `<LogicalId.Attr>`, `<LogicalId>`,
    `<AWS::Region>` or the export name of a cross-stack import. Computing them keeps
    acknowledgements exact without hard-coding hashed logical ids.
    """
    from aws_cdk import Stack

    resolved = Stack.of(scope).resolve(value)
    return _render(resolved)


def _render(node: object) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::ImportValue":
            return _render(arg)
        if fn == "Fn::Join":
            separator, parts = arg
            return str(separator).join(_render(p) for p in parts)
    raise ValueError(f"cannot render {node!r} as cdk-nag does")
