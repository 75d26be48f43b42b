"""Renders the onboarding templates: a separate bootstrapless app, cdk-nag, plain YAML.

Neither template is part of the platform app (`cdk deploy --all` must not create a
deployer role in the platform's own account). Each is synthesized in its own `cdk.App`
without construct paths or version reporting, checked by cdk-nag, and returned as
CloudFormation YAML in the section order a reviewer reads top-down.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from typing import Any

import aws_cdk as cdk
import yaml
from cdk_nag import AwsSolutionsChecks

from stacks.config import PlatformConfig
from stacks.customer_onboarding_stack import CustomerOnboardingStack
from stacks.organization_onboarding_stack import OrganizationOnboardingStack

# Context of the separate onboarding app: no construct paths, no version report.
ONBOARDING_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": False,
    "aws:cdk:version-reporting": False,
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-iam:minimizePolicies": False,
}

_TOP_LEVEL_ORDER = (
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Conditions",
    "Resources",
    "Outputs",
)


def _new_app(outdir: str) -> cdk.App:
    # After the CLI's context, not before it: under `cdk synth`/`cdk deploy` the CLI turns
    # path metadata on for every app in the process, and the published template must be
    # the one in dist/ (and its lock), byte for byte.
    return cdk.App(
        post_cli_context=dict(ONBOARDING_CONTEXT), analytics_reporting=False, outdir=outdir
    )


def _to_yaml(template: dict[str, Any]) -> str:
    ordered = {key: template[key] for key in _TOP_LEVEL_ORDER if key in template}
    unknown = set(template) - set(ordered)
    if unknown:
        raise ValueError(f"unexpected template sections: {sorted(unknown)}")
    return yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, width=100)


@functools.cache
def render_customer_template(config: PlatformConfig) -> str:
    """The customer onboarding template as CloudFormation YAML; same config, same bytes.

    Raises RuntimeError when cdk-nag finds something unacknowledged.
    """
    with tempfile.TemporaryDirectory(prefix="onboarding.cdk.out") as outdir:
        app = _new_app(outdir)
        stack = CustomerOnboardingStack(app, "CustomerOnboarding", config=config)
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        template = app.synth().get_stack_artifact(stack.artifact_id).template
    return _to_yaml(template)


def handed_out(config: PlatformConfig) -> PlatformConfig:
    """The configuration the templates we hand out (dist/, dist/releases/, the lock) are
    rendered with: the same bytes whoever renders them, so a released version's hash
    means one template. The owner's account is not in it (`platformAccountId` sets the
    PlatformAccountId Default only in the copy the platform publishes to its own bucket;
    Launch Stack links prefill the parameter either way)."""
    return dataclasses.replace(config, platform_account_id=None)


@functools.cache
def render_organization_template(config: PlatformConfig) -> str:
    """The Tier 3 StackSet template (the customer template inline) as CloudFormation YAML."""
    template_body = render_customer_template(config)
    with tempfile.TemporaryDirectory(prefix="onboarding.cdk.out") as outdir:
        app = _new_app(outdir)
        stack = OrganizationOnboardingStack(
            app, "OrganizationOnboarding", config=config, template_body=template_body
        )
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        template = app.synth().get_stack_artifact(stack.artifact_id).template
    return _to_yaml(template)


__all__ = [
    "ONBOARDING_CONTEXT",
    "handed_out",
    "render_customer_template",
    "render_organization_template",
]
