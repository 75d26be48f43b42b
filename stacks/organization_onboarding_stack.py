"""Tier 3: the customer onboarding template as a service-managed StackSet over the given OUs."""

from __future__ import annotations

from aws_cdk import (
    BootstraplessSynthesizer,
    CfnParameter,
    CfnRule,
    CfnRuleAssertion,
    Fn,
    Stack,
)
from aws_cdk import aws_cloudformation as cfn

from constructs import Construct
from stacks.config import PlatformConfig
from stacks.onboarding_parameters import declare_passed_parameters

# StackSet TemplateBody (and CreateStack's) limit, in bytes.
TEMPLATE_BODY_LIMIT = 51_200

# Where the organisation template words a shared parameter differently: the StackSet
# creates its stacks in DeploymentRegion, not in the region this template runs in.
ORGANIZATION_WORDING = {
    "RegistrationToken": "The organisation's registration token (POST /org/accounts/onboarding "
    "prefills it): every account of the StackSet registers with it, until an admin gets a "
    "new link, which replaces it (then update this parameter).",
    "RegistrationTopicArn": "'default' (the platform's topic in DeploymentRegion), empty to "
    "skip registration, or a topic ARN",
    "AllowedRegions": "Optional: the only regions every account's deployer role may act in "
    "(e.g. eu-west-1,eu-central-1; POST /org/accounts/onboarding prefills the organisation's "
    "allowedRegions); IAM denies its calls anywhere else, whatever the platform asks. It must "
    "include DeploymentRegion. Empty: no region limit.",
}


class OrganizationOnboardingStack(Stack):
    """Tier 3: the customer template as a service-managed StackSet over the given OUs."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, template_body: str
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=BootstraplessSynthesizer(),
            analytics_reporting=False,
            description=(
                f"{config.prefix} organisation onboarding, template version "
                f"{config.template_version}: a service-managed StackSet that launches the "
                f"{config.prefix} customer onboarding template in every account of the given "
                "organisational units, now and as accounts join them."
            ),
        )
        self.template_options.template_format_version = "2010-09-09"
        if len(template_body.encode()) > TEMPLATE_BODY_LIMIT:
            raise ValueError(
                f"The customer template is {len(template_body.encode())} bytes, over "
                f"StackSet TemplateBody's {TEMPLATE_BODY_LIMIT}: publish it and use TemplateURL"
            )
        ous = CfnParameter(
            self,
            "OrganizationalUnitIds",
            type="CommaDelimitedList",
            allowed_pattern=r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$",
            constraint_description="organisational unit ids (ou-...) or the root id (r-...)",
            description="Organisational units (or the root) whose accounts get the template",
        )
        region = CfnParameter(
            self,
            "DeploymentRegion",
            type="String",
            allowed_pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$",
            constraint_description="one AWS region, e.g. eu-west-1",
            description="The one region each account is connected in. One only: the template's "
            "IAM role names are account-wide, so a second region would collide with the first.",
        )
        call_as = CfnParameter(
            self,
            "CallAs",
            type="String",
            default="SELF",
            allowed_values=["SELF", "DELEGATED_ADMIN"],
            description="SELF in the management account; DELEGATED_ADMIN in a delegated "
            "StackSets administrator account",
        )
        # The same declarations as the customer template's, except per-account choices
        # (an existing VPC id is per account, not per OU: accounts get their own VPC).
        passed = declare_passed_parameters(
            self, config.prefix, config.platform_account_id, ORGANIZATION_WORDING
        )
        allowed_regions = passed["AllowedRegions"].value_as_list
        # Every account's stack lives in DeploymentRegion: a region limit without it would
        # leave the platform nothing it may do there (each registration would then fail).
        CfnRule(
            self,
            "DeploymentRegionIsAllowed",
            rule_condition=Fn.condition_not(Fn.condition_contains(allowed_regions, "")),
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(allowed_regions, region.value_as_string),
                    assert_description="AllowedRegions, when given, must include "
                    "DeploymentRegion: the accounts' stacks and their agent tasks live there.",
                )
            ],
        )
        cfn.CfnStackSet(
            self,
            "Onboarding",
            stack_set_name=f"{config.prefix}-onboarding",
            description=f"{config.prefix} customer onboarding {config.template_version}",
            permission_model="SERVICE_MANAGED",
            auto_deployment=cfn.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            call_as=call_as.value_as_string,
            capabilities=["CAPABILITY_NAMED_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cfn.CfnStackSet.OperationPreferencesProperty(
                failure_tolerance_percentage=10,
                max_concurrent_percentage=25,
                region_concurrency_type="PARALLEL",
            ),
            parameters=[
                cfn.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=_value(param))
                for key, param in passed.items()
            ],
            stack_instances_group=[
                cfn.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=ous.value_as_list
                    ),
                    regions=[region.value_as_string],
                )
            ],
            template_body=template_body,
        )


def _value(parameter: CfnParameter) -> str:
    """A parameter's value as a StackSet passes it on: a list as its comma-separated text."""
    if parameter.type == "CommaDelimitedList":
        return Fn.join(",", parameter.value_as_list)
    return parameter.value_as_string


__all__ = ["ORGANIZATION_WORDING", "TEMPLATE_BODY_LIMIT", "OrganizationOnboardingStack"]
