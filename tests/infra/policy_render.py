"""Every IAM policy document of a CloudFormation template, with its intrinsics rendered to
plausible literal strings, so that tools that read plain policies (parliament, the IAM
reference checks) see what AWS would see after deployment.

How intrinsics become strings (`Renderer.value`):
- `Ref` of a pseudo parameter: `aws`, `us-east-1`, `111111111111`, `amazonaws.com`; of a
  template parameter: its default, or a value of its declared type/pattern (an account id
  for `PlatformAccountId`, a `vpc-`/`subnet-` id, `example` otherwise);
- `Ref`/`Fn::GetAtt ...Arn` of a resource: the ARN (or name, URL, id) that resource type
  would have, built from its physical-name property when it has one and from its logical id
  otherwise (`arn:aws:iam::111111111111:role/<RoleName>`, `arn:aws:s3:::<bucket>`, ...);
- `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split` are evaluated; `Fn::If` takes its first
  branch (both branches of every condition in these templates render to the same ARN shapes);
  `Fn::ImportValue` is the exporting template's output, rendered with that template.

What parliament cannot read as-is gets the one thing it lacks (`policy_documents`):
- a trust policy's statements name no Resource (the role is implied): each gets the role's
  own ARN, so parliament checks actions, principals and condition keys as for any
  statement on that role;
- an ECR repository policy names no Resource either: each statement gets the repository's
  ARN;
- a StackSet's TemplateBody (the organisation template) is parsed and its policies read
  like any template's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

PARTITION, REGION, ACCOUNT, URL_SUFFIX = "aws", "us-east-1", "111111111111", "amazonaws.com"
PLATFORM_ACCOUNT = "222222222222"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": URL_SUFFIX,
    "AWS::StackName": "agent-builder-stack",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/agent-builder-stack/"
    "00000000-0000-0000-0000-000000000000",
    "AWS::NoValue": "",
}
NAME_PROPERTIES = (
    "RoleName",
    "ClusterName",
    "LogGroupName",
    "TableName",
    "TopicName",
    "QueueName",
    "RepositoryName",
    "FunctionName",
    "BucketName",
    "Name",
    "Family",
    "PolicyName",
    "UserPoolName",
    "KeyAlias",
)


@dataclass(frozen=True)
class PolicyDocument:
    """One policy document: where it is (resource and property path), and its text."""

    template: str
    resource: str
    where: str
    kind: str  # "identity", "trust" or "resource"
    document: dict[str, Any]

    @property
    def location(self) -> str:
        return f"{self.template}:{self.resource}:{self.where}"


class Renderer:
    def __init__(self, template: dict[str, Any], exports: dict[str, Any] | None = None) -> None:
        self._resources: dict[str, Any] = template.get("Resources", {})
        self._parameters: dict[str, Any] = template.get("Parameters", {})
        self._exports = exports or {}

    # ---- intrinsics -----------------------------------------------------------------

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attribute(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.value(p)) for p in self.value(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                return self.value(arg[1])
            if key == "Fn::Select":
                index, items = arg
                return self.value(items)[int(self.value(index))]
            if key == "Fn::Split":
                separator, source = arg
                return str(self.value(source)).split(separator)
            if key == "Fn::ImportValue":
                return self._exports[self.value(arg)]
            if key == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b"]
        return {k: self.value(v) for k, v in node.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self._attribute(logical_id, attribute))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def _ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self._parameters:
            return self._parameter(name)
        if name in self._resources:
            return self._physical(name, ref=True)
        raise KeyError(f"Ref to unknown {name}")

    def _parameter(self, name: str) -> Any:
        declared = self._parameters[name]
        default = declared.get("Default")
        kind = declared.get("Type", "String")
        if "AccountId" in name:
            return default or PLATFORM_ACCOUNT
        if kind.startswith("List<") or kind.startswith("CommaDelimitedList"):
            return [f"subnet-0{i}" for i in range(2)] if not default else default.split(",")
        if default not in (None, "", "default"):
            return default
        if "Vpc" in name:
            return "vpc-0123456789abcdef0"
        if "Topic" in name:
            return f"arn:{PARTITION}:sns:{REGION}:{PLATFORM_ACCOUNT}:agent-builder-registrations"
        return "example"

    # ---- resources --------------------------------------------------------------------

    def _name(self, logical_id: str) -> str:
        properties = self._resources[logical_id].get("Properties", {})
        for key in NAME_PROPERTIES:
            if key in properties and isinstance(self.value(properties[key]), str):
                return str(self.value(properties[key]))
        return logical_id.lower()

    def _attribute(self, logical_id: str, attribute: str) -> Any:
        if attribute in ("Arn", "RoleArn", "TopicArn", "QueueArn", "KeyArn"):
            return self._arn(logical_id)
        if attribute in ("RoleId", "KeyId", "Id", "UserPoolId", "ClientId"):
            return f"{logical_id.lower()}-id"
        if attribute in ("QueueName", "TopicName", "Name"):
            return self._name(logical_id)
        return f"{logical_id.lower()}-{attribute.lower()}"

    def _physical(self, logical_id: str, *, ref: bool) -> str:
        kind = self._resources[logical_id]["Type"]
        # Ref is the ARN for these (a KMS key's Ref is its id).
        if kind in (
            "AWS::SNS::Topic",
            "AWS::ECS::TaskDefinition",
            "AWS::KMS::Key",
            "AWS::SecretsManager::Secret",
        ):
            return self._arn(logical_id) if kind != "AWS::KMS::Key" else f"{logical_id}-key-id"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT}/{self._name(logical_id)}"
        if kind == "AWS::EC2::VPC":
            return "vpc-0123456789abcdef0"
        return self._name(logical_id)

    def _arn(self, logical_id: str) -> str:
        kind = self._resources[logical_id]["Type"]
        name = self._name(logical_id)
        regional = f"{REGION}:{ACCOUNT}"
        arns = {
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}",
            "AWS::ECS::Cluster": f"arn:{PARTITION}:ecs:{regional}:cluster/{name}",
            "AWS::ECS::TaskDefinition": f"arn:{PARTITION}:ecs:{regional}:task-definition/{name}:1",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{regional}:log-group:{name}:*",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{regional}:table/{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{regional}:{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{regional}:{name}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{regional}:key/"
            "0123abcd-4567-89ef-0123-456789abcdef",
            "AWS::ECR::Repository": f"arn:{PARTITION}:ecr:{regional}:repository/{name}",
            "AWS::SecretsManager::Secret": f"arn:{PARTITION}:secretsmanager:{regional}:secret:"
            f"{name}-AbCdEf",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{regional}:function:{name}",
            "AWS::Cognito::UserPool": f"arn:{PARTITION}:cognito-idp:{regional}:userpool/"
            f"{REGION}_Example1",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{regional}:rule/{name}",
            "AWS::Scheduler::ScheduleGroup": f"arn:{PARTITION}:scheduler:{regional}:"
            f"schedule-group/{name}",
            "AWS::CloudFront::Distribution": f"arn:{PARTITION}:cloudfront::{ACCOUNT}:"
            f"distribution/{logical_id.upper()[:14]}",
        }
        if kind in arns:
            return arns[kind]
        service = kind.split("::")[1].lower()
        return f"arn:{PARTITION}:{service}:{regional}:{_slug(kind.split('::')[2])}/{name}"


def _slug(text: Any) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-")


# Where templates hold policy documents: (resource type, property, kind).
POLICY_PROPERTIES = (
    ("AWS::IAM::Role", "AssumeRolePolicyDocument", "trust"),
    ("AWS::IAM::Policy", "PolicyDocument", "identity"),
    ("AWS::IAM::ManagedPolicy", "PolicyDocument", "identity"),
    ("AWS::S3::BucketPolicy", "PolicyDocument", "resource"),
    ("AWS::SNS::TopicPolicy", "PolicyDocument", "resource"),
    ("AWS::SQS::QueuePolicy", "PolicyDocument", "resource"),
    ("AWS::ECR::Repository", "RepositoryPolicyText", "resource"),
    ("AWS::KMS::Key", "KeyPolicy", "resource"),
)


def exports_of(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every exported output of `templates`, rendered, by export name."""
    exports: dict[str, Any] = {}
    for template in templates.values():
        renderer = Renderer(template)
        for output in template.get("Outputs", {}).values():
            if "Export" in output:
                exports[renderer.value(output["Export"]["Name"])] = renderer.value(output["Value"])
    return exports


def _with_resource(document: Any, arn: str) -> Any:
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    return {
        **document,
        "Statement": [
            s if "Resource" in s or "NotResource" in s else {**s, "Resource": arn}
            for s in statements
        ],
    }


def policy_documents(
    name: str, template: dict[str, Any], exports: dict[str, Any] | None = None
) -> Iterator[PolicyDocument]:
    """Every policy document in `template` (and in any StackSet body it holds), rendered."""
    renderer = Renderer(template, exports)
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for kind, key, policy_kind in POLICY_PROPERTIES:
            if resource["Type"] == kind and key in properties:
                document = renderer.value(properties[key])
                if kind in ("AWS::IAM::Role", "AWS::ECR::Repository"):
                    document = _with_resource(
                        document, renderer.value({"Fn::GetAtt": [logical_id, "Arn"]})
                    )
                yield PolicyDocument(name, logical_id, key, policy_kind, document)
        if resource["Type"] == "AWS::IAM::Role":
            for index, inline in enumerate(properties.get("Policies", [])):
                yield PolicyDocument(
                    name,
                    logical_id,
                    f"Policies[{index}]",
                    "identity",
                    renderer.value(inline["PolicyDocument"]),
                )
        if resource["Type"] == "AWS::CloudFormation::StackSet" and "TemplateBody" in properties:
            body = yaml.safe_load(renderer.value(properties["TemplateBody"]))
            yield from policy_documents(f"{name}/{logical_id}", body)


__all__ = ["PolicyDocument", "Renderer", "exports_of", "policy_documents"]
