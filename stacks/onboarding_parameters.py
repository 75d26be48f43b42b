"""The onboarding templates' parameters, declared once for both of them.

The customer template (one account) declares all of them; the organisation template
declares those its StackSet passes on to every account (not the per-account network
choices) with the same type, pattern, lengths, default and constraint text. The only
wording it changes is listed where it declares them (ORGANIZATION_WORDING).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import CfnParameter, CfnRule, CfnRuleAssertion, Fn, Stack

# The characters AWS accepts in an External ID (sts:AssumeRole's ExternalId parameter).
EXTERNAL_ID_PATTERN = r"^[\w+=,.@:/-]+$"
RESOURCE_PREFIX_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"
ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
# "" skips registration; "default" means the platform's topic in the stack's own region.
REGISTRATION_DEFAULT = "default"
REGISTRATION_TOPIC_PATTERN = (
    r"^(|default|arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})$"
)
# secrets.token_urlsafe(32), as POST /aws-account/onboarding issues it; empty with no
# registration (RegistrationTopicArn empty: the RoleArn output is pasted instead).
REGISTRATION_TOKEN_PATTERN = r"^([A-Za-z0-9_-]{43})?$"  # noqa: S105 - a pattern, not a secret
VPC_ID_PATTERN = r"^(|vpc-[0-9a-f]{8,17})$"
SUBNET_IDS_PATTERN = r"^(|subnet-[0-9a-f]{8,17})$"
# One element of AllowedRegions (a CommaDelimitedList: the pattern applies to each).
ALLOWED_REGIONS_PATTERN = r"^(|[a-z]{2}(-gov)?-[a-z]+-[0-9])$"


@dataclass(frozen=True)
class Parameter:
    """One template parameter, as both templates declare it."""

    name: str
    label: str
    description: str
    type: str = "String"
    default: str | None = None
    allowed_pattern: str | None = None
    constraint_description: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    # An account's own choice: the organisation's StackSet does not pass it on.
    per_account: bool = False
    # Masked in the console, in DescribeStacks and in events.
    no_echo: bool = False

    def declare(self, stack: Stack, *, description: str | None = None) -> CfnParameter:
        return CfnParameter(
            stack,
            self.name,
            type=self.type,
            no_echo=self.no_echo or None,
            default=self.default,
            allowed_pattern=self.allowed_pattern,
            constraint_description=self.constraint_description,
            min_length=self.min_length,
            max_length=self.max_length,
            description=self.description if description is None else description,
        )


def parameters(prefix: str, platform_account_id: str | None) -> tuple[Parameter, ...]:
    """Every parameter, in the customer template's order, for a platform named `prefix`."""
    return (
        Parameter(
            "ExternalId",
            label="External ID",
            min_length=16,
            max_length=1224,
            allowed_pattern=EXTERNAL_ID_PATTERN,
            constraint_description="16 to 1224 characters: letters, digits and + = , . @ : / - _",
            description="The External ID the platform showed you (prefilled by the Launch Stack "
            "link). The platform must present it to assume the deployer role.",
            no_echo=True,
        ),
        Parameter(
            "RegistrationToken",
            label="Registration token",
            default="",
            max_length=43,
            allowed_pattern=REGISTRATION_TOKEN_PATTERN,
            constraint_description="the 43-character token of the Launch Stack link, or empty",
            description="Prefilled by the Launch Stack link: proves to the platform that this "
            "stack's registration comes from your link. Single use, valid for 24 hours; get a "
            "new link (POST /aws-account/onboarding) to register again.",
            no_echo=True,
        ),
        Parameter(
            "ResourcePrefix",
            label="Resource name prefix",
            default=prefix,
            min_length=1,
            max_length=20,
            allowed_pattern=RESOURCE_PREFIX_PATTERN,
            constraint_description="lowercase letters, digits and hyphens, starting with a "
            "letter, at most 20 characters",
            description="Prefix of the cluster, task roles, log group and task-definition "
            "families the platform may use. The deployer role keeps the platform's name "
            f"({prefix}-deployer) whatever this says.",
        ),
        Parameter(
            "PlatformAccountId",
            label="Platform account id",
            allowed_pattern=ACCOUNT_ID_PATTERN,
            constraint_description="a 12-digit AWS account id",
            description=f"The {prefix} platform's AWS account: only its {prefix}-launcher role "
            "may assume the deployer role.",
            # None when cdk.json has no platformAccountId: then the customer must give it.
            default=platform_account_id,
        ),
        Parameter(
            "VpcId",
            label="Existing VPC (optional)",
            default="",
            allowed_pattern=VPC_ID_PATTERN,
            constraint_description="empty, or a VPC id (vpc-...)",
            description="Optional: an existing VPC for agent tasks. Empty creates a new VPC "
            "with two public subnets and no NAT gateway.",
            per_account=True,
        ),
        Parameter(
            "SubnetIds",
            label="Existing subnets (with an existing VPC)",
            type="CommaDelimitedList",
            default="",
            allowed_pattern=SUBNET_IDS_PATTERN,
            constraint_description="subnet ids (subnet-...), separated by commas",
            description="With VpcId: subnets of that VPC for agent tasks (they need a route to "
            "the internet or VPC endpoints for ECR, CloudWatch Logs and Bedrock).",
            per_account=True,
        ),
        Parameter(
            "RegistrationTopicArn",
            label="Registration topic",
            default=REGISTRATION_DEFAULT,
            allowed_pattern=REGISTRATION_TOPIC_PATTERN,
            constraint_description="empty, 'default', or an SNS topic ARN",
            description="Where CloudFormation sends this stack's registration. 'default': the "
            f"platform's topic {prefix}-registrations in this region of the platform "
            "account. Empty: do not register (paste the RoleArn output into the platform).",
        ),
        Parameter(
            "AllowedRegions",
            label="Allowed regions (optional)",
            type="CommaDelimitedList",
            default="",
            allowed_pattern=ALLOWED_REGIONS_PATTERN,
            constraint_description="AWS region names (e.g. eu-west-1), separated by commas",
            description="Optional: the only regions the deployer role may act in (e.g. "
            "eu-west-1,eu-central-1); IAM denies its calls anywhere else, whatever the "
            "platform asks. Include the region of this stack, or the platform can do nothing "
            "here. Empty: no region limit.",
        ),
    )


# How the CloudFormation console groups the customer template's parameters.
PARAMETER_GROUPS = (
    (
        "Connection to the platform",
        (
            "ExternalId",
            "RegistrationToken",
            "PlatformAccountId",
            "RegistrationTopicArn",
            "AllowedRegions",
        ),
    ),
    ("Resources in this account", ("ResourcePrefix", "VpcId", "SubnetIds")),
)


def declare_customer_parameters(
    stack: Stack, prefix: str, platform_account_id: str | None
) -> dict[str, CfnParameter]:
    """All parameters, their console grouping and the rules between VpcId and SubnetIds."""
    declared = {p.name: p.declare(stack) for p in parameters(prefix, platform_account_id)}
    labels = {p.name: p.label for p in parameters(prefix, platform_account_id)}
    stack.template_options.metadata = {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": label}, "Parameters": list(names)}
                for label, names in PARAMETER_GROUPS
            ],
            "ParameterLabels": {
                name: {"default": labels[name]} for _, names in PARAMETER_GROUPS for name in names
            },
        }
    }
    subnets = declared["SubnetIds"].value_as_list
    no_vpc = Fn.condition_equals(declared["VpcId"].value_as_string, "")
    CfnRule(
        stack,
        "ExistingVpcNeedsSubnets",
        rule_condition=Fn.condition_not(no_vpc),
        assertions=[
            CfnRuleAssertion(
                assert_=Fn.condition_not(Fn.condition_contains(subnets, "")),
                assert_description="With an existing VpcId, give its SubnetIds too.",
            )
        ],
    )
    CfnRule(
        stack,
        "SubnetsNeedTheirVpc",
        rule_condition=no_vpc,
        assertions=[
            CfnRuleAssertion(
                assert_=Fn.condition_contains(subnets, ""),
                assert_description="SubnetIds are used only with an existing VpcId: give "
                "both, or neither for a new VPC.",
            )
        ],
    )
    return declared


def declare_passed_parameters(
    stack: Stack,
    prefix: str,
    platform_account_id: str | None,
    wording: Mapping[str, str],
) -> dict[str, CfnParameter]:
    """The parameters a StackSet passes to every account, reworded only as `wording` says."""
    passed = [p for p in parameters(prefix, platform_account_id) if not p.per_account]
    unknown = set(wording) - {p.name for p in passed}
    if unknown:
        raise ValueError(f"wording for parameters that are not passed on: {sorted(unknown)}")
    return {p.name: p.declare(stack, description=wording.get(p.name)) for p in passed}


__all__ = [
    "ACCOUNT_ID_PATTERN",
    "ALLOWED_REGIONS_PATTERN",
    "EXTERNAL_ID_PATTERN",
    "REGISTRATION_DEFAULT",
    "REGISTRATION_TOKEN_PATTERN",
    "REGISTRATION_TOPIC_PATTERN",
    "RESOURCE_PREFIX_PATTERN",
    "Parameter",
    "declare_customer_parameters",
    "declare_passed_parameters",
    "parameters",
]
