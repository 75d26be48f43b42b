"""Acknowledging findings of cdk-nag and checkov, each with its reason beside it."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations

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
    skips = list(existing["skip"]) + [{"id": check, "comment": reason} for check, reason in sorted(reasons.items())]
    resource.add_metadata("checkov", {"skip": skips})
