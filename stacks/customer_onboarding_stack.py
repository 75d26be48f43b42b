"""Stack 4, customer onboarding: the template a Tier 2 customer launches in their own account.

It is never part of the platform app (`cdk deploy --all` must not create a deployer role in
the platform's own account): `render_customer_template` builds it in a separate, bootstrapless
`cdk.App` and returns plain CloudFormation YAML, which `scripts/export_templates.py` writes to
`dist/customer-onboarding.yaml` and the platform stack publishes for Launch Stack links.

What the customer's security team reads in it:

- The deployer role keeps the platform's fixed name `<platform prefix>-deployer`, whatever
  `ResourcePrefix` says: the platform's launcher role may assume only roles of exactly that
  name, so a customer-chosen name would be a role nobody can use. `ResourcePrefix` names
  everything else (cluster, task roles, log group, task-definition families), and the
  deployer's permissions are scoped to it.
- The deployer trusts one principal, the platform's launcher role ARN (not the account
  root), and only with the customer's External ID.
- Registration is an SNS-backed custom resource: CloudFormation itself tells the platform
  the role ARN (no Lambda in the customer's account), and deleting the stack disconnects.
"""

from __future__ import annotations

import functools
import tempfile
from typing import Any

import aws_cdk as cdk
import yaml
from aws_cdk import (
    BootstraplessSynthesizer,
    CfnCondition,
    CfnOutput,
    CfnParameter,
    CfnResource,
    CfnRule,
    CfnRuleAssertion,
    Duration,
    Fn,
    Stack,
    Token,
)
from aws_cdk import aws_cloudformation as cfn
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from constructs import Construct
from constructs.agent_cluster import AgentCluster
from constructs.agent_network import AgentNetwork
from constructs.nag import acknowledge, checkov_skip, nag_text
from stacks.config import PlatformConfig

# Context of the separate onboarding app: no construct paths, no version report.
ONBOARDING_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": False,
    "aws:cdk:version-reporting": False,
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-iam:minimizePolicies": False,
}

# The characters AWS accepts in an External ID (sts:AssumeRole's ExternalId parameter).
EXTERNAL_ID_PATTERN = r"^[\w+=,.@:/-]+$"
RESOURCE_PREFIX_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"
ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
# "" skips registration; "default" means the platform's topic in the stack's own region.
REGISTRATION_DEFAULT = "default"
REGISTRATION_TOPIC_PATTERN = (
    r"^(|default|arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})$"
)
REGISTRATION_TIMEOUT_SECONDS = 300
VPC_ID_PATTERN = r"^(|vpc-[0-9a-f]{8,17})$"
SUBNET_IDS_PATTERN = r"^(|subnet-[0-9a-f]{8,17})$"

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


class CustomerOnboardingStack(Stack):
    """The deployer role, the agent cluster and its network, and the registration."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=BootstraplessSynthesizer(),
            analytics_reporting=False,
            description=(
                f"{config.prefix} customer onboarding, template version {config.template_version}: "
                f"connects this AWS account to the {config.prefix} platform (a deployer role "
                "that only the platform's launcher role can assume with your External ID, an "
                "ECS Fargate cluster, its network and task roles). Nothing here bills while idle."
            ),
        )
        self.template_options.template_format_version = "2010-09-09"
        platform_prefix = config.prefix
        self._parameters(config)
        prefix = self.resource_prefix.value_as_string
        cdk.Tags.of(self).add("Project", prefix)

        # ---- network: a new VPC, unless the customer names an existing one ------------------
        self.create_vpc = CfnCondition(
            self, "CreateVpc", expression=Fn.condition_equals(self.vpc_id.value_as_string, "")
        )
        self.network = AgentNetwork(
            self,
            "Network",
            prefix=prefix,
            flow_log_retention=config.log_retention,
            # Restricting the default security group takes a Lambda-backed custom resource,
            # and this template runs no Lambda in the customer's account.
            restrict_default_security_group=False,
        )
        security_group = self.network.task_security_group
        for child in self.network.node.find_all():
            if isinstance(child, CfnResource) and not child.node.path.startswith(
                security_group.node.path
            ):
                child.cfn_options.condition = self.create_vpc
        security_group_resource = security_group.node.default_child
        assert isinstance(security_group_resource, CfnResource)
        security_group_resource.add_property_override(
            "VpcId",
            Fn.condition_if(
                self.create_vpc.logical_id, self.network.vpc.vpc_id, self.vpc_id.value_as_string
            ),
        )
        # A parameter's default ("") meets the VpcId format check in the branch that only
        # runs when VpcId is not empty.
        acknowledge(
            security_group,
            "CloudFormation-Validate::E1151",
            "VpcId is Fn::If(CreateVpc, the new VPC, the VpcId parameter): the parameter branch "
            "is taken only when the parameter is a non-empty vpc- id, never with its default.",
        )
        self.subnet_id_list = Token.as_list(
            Fn.condition_if(
                self.create_vpc.logical_id,
                self.network.subnets.subnet_ids,
                self.subnet_ids.value_as_list,
            )
        )
        vpc_resource = self.network.vpc.node.default_child
        assert isinstance(vpc_resource, CfnResource)
        checkov_skip(
            vpc_resource,
            CKV2_AWS_12="The default security group keeps AWS's defaults: nothing in this template "
            "uses it (agent tasks get their own egress-only group), and restricting it would "
            "need a Lambda-backed custom resource in the customer's account.",
        )

        # ---- the agent cluster, its log group and task roles (shared with the platform) -----
        self.agents = AgentCluster(
            self,
            "Agents",
            prefix=prefix,
            vpc=self.network.vpc,
            allowed_models=config.allowed_models,
            log_retention=config.log_retention,
        )
        self._pull_platform_runner_image(platform_prefix)

        # ---- the role the platform works through ---------------------------------------------
        self.deployer = self._deployer_role(platform_prefix, prefix)
        self._registration(config)
        self._outputs(config)

    # -------------------------------------------------------------------------------------------

    def _parameters(self, config: PlatformConfig) -> None:
        self.external_id = CfnParameter(
            self,
            "ExternalId",
            type="String",
            min_length=16,
            max_length=1224,
            allowed_pattern=EXTERNAL_ID_PATTERN,
            constraint_description="16 to 1224 characters: letters, digits and + = , . @ : / - _",
            description="The External ID the platform showed you (prefilled by the Launch Stack "
            "link). The platform must present it to assume the deployer role.",
        )
        self.resource_prefix = CfnParameter(
            self,
            "ResourcePrefix",
            type="String",
            default=config.prefix,
            min_length=1,
            max_length=20,
            allowed_pattern=RESOURCE_PREFIX_PATTERN,
            constraint_description="lowercase letters, digits and hyphens, starting with a "
            "letter, at most 20 characters",
            description="Prefix of the cluster, task roles, log group and task-definition "
            "families the platform may use. The deployer role keeps the platform's name "
            f"({config.prefix}-deployer) whatever this says.",
        )
        self.platform_account_id = CfnParameter(
            self,
            "PlatformAccountId",
            type="String",
            allowed_pattern=ACCOUNT_ID_PATTERN,
            constraint_description="a 12-digit AWS account id",
            description=f"The {config.prefix} platform's AWS account: only its "
            f"{config.prefix}-launcher role may assume the deployer role.",
            # None when cdk.json has no platformAccountId: then the customer must give it.
            default=config.platform_account_id,
        )
        self.vpc_id = CfnParameter(
            self,
            "VpcId",
            type="String",
            default="",
            allowed_pattern=VPC_ID_PATTERN,
            constraint_description="empty, or a VPC id (vpc-...)",
            description="Optional: an existing VPC for agent tasks. Empty creates a new VPC "
            "with two public subnets and no NAT gateway.",
        )
        self.subnet_ids = CfnParameter(
            self,
            "SubnetIds",
            type="CommaDelimitedList",
            default="",
            allowed_pattern=SUBNET_IDS_PATTERN,
            constraint_description="subnet ids (subnet-...), separated by commas",
            description="With VpcId: subnets of that VPC for agent tasks (they need a route to "
            "the internet or VPC endpoints for ECR, CloudWatch Logs and Bedrock).",
        )
        self.registration_topic = CfnParameter(
            self,
            "RegistrationTopicArn",
            type="String",
            default=REGISTRATION_DEFAULT,
            allowed_pattern=REGISTRATION_TOPIC_PATTERN,
            constraint_description="empty, 'default', or an SNS topic ARN",
            description="Where CloudFormation sends this stack's registration. 'default': the "
            f"platform's topic {config.prefix}-registrations in this region of the platform "
            "account. Empty: do not register (paste the RoleArn output into the platform).",
        )
        self.template_options.metadata = {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {
                        "Label": {"default": "Connection to the platform"},
                        "Parameters": [
                            "ExternalId",
                            "PlatformAccountId",
                            "RegistrationTopicArn",
                        ],
                    },
                    {
                        "Label": {"default": "Resources in this account"},
                        "Parameters": ["ResourcePrefix", "VpcId", "SubnetIds"],
                    },
                ],
                "ParameterLabels": {
                    "ExternalId": {"default": "External ID"},
                    "PlatformAccountId": {"default": "Platform account id"},
                    "RegistrationTopicArn": {"default": "Registration topic"},
                    "ResourcePrefix": {"default": "Resource name prefix"},
                    "VpcId": {"default": "Existing VPC (optional)"},
                    "SubnetIds": {"default": "Existing subnets (with an existing VPC)"},
                },
            }
        }
        no_vpc = Fn.condition_equals(self.vpc_id.value_as_string, "")
        CfnRule(
            self,
            "ExistingVpcNeedsSubnets",
            rule_condition=Fn.condition_not(no_vpc),
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_not(
                        Fn.condition_contains(self.subnet_ids.value_as_list, "")
                    ),
                    assert_description="With an existing VpcId, give its SubnetIds too.",
                )
            ],
        )
        CfnRule(
            self,
            "SubnetsNeedTheirVpc",
            rule_condition=no_vpc,
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_contains(self.subnet_ids.value_as_list, ""),
                    assert_description="SubnetIds are used only with an existing VpcId: give "
                    "both, or neither for a new VPC.",
                )
            ],
        )

    def _arn(self, service: str, resource: str, *, region: str | None = None) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region is None else region}:"
            f"{self.account}:{resource}"
        )

    def _pull_platform_runner_image(self, platform_prefix: str) -> None:
        # The platform's runner image lives in the platform account; a cross-account pull needs
        # this identity grant as well as the repository policy there. The platform may run in
        # any region, which its account id and repository name, not this template, pin down.
        runner_repository = (
            f"arn:{self.partition}:ecr:*:{self.platform_account_id.value_as_string}:"
            f"repository/{platform_prefix}/agent-runner"
        )
        self.agents.execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="PullPlatformRunnerImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[runner_repository],
            )
        )
        acknowledge(
            self.agents.execution_role,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, runner_repository)}]",
            "Only the platform's one runner repository in the platform account; the region is a "
            "wildcard because the template launches in any region and the platform's region is "
            "not known to it. Pulling also needs the repository's own policy to allow it.",
        )

    def _deployer_role(self, platform_prefix: str, prefix: str) -> iam.Role:
        launcher_arn = (
            f"arn:{self.partition}:iam::{self.platform_account_id.value_as_string}:"
            f"role/{platform_prefix}-launcher"
        )
        launcher = iam.ArnPrincipal(launcher_arn)
        deployer = iam.Role(
            self,
            "Deployer",
            # Fixed to the platform's name: the launcher may assume only <platform>-deployer.
            role_name=f"{platform_prefix}-deployer",
            description=f"{platform_prefix}: runs agent tasks on {platform_prefix}'s behalf in "
            "the prefixed cluster; assumable only by its launcher role with your External ID",
            assumed_by=launcher,
            external_ids=[self.external_id.value_as_string],
            max_session_duration=Duration.hours(1),
        )
        # The platform sets the user behind each call as the session's source identity, so
        # the customer's CloudTrail says who launched what.
        assert deployer.assume_role_policy is not None
        deployer.assume_role_policy.add_statements(
            iam.PolicyStatement(actions=["sts:SetSourceIdentity"], principals=[launcher])
        )

        cluster_arn = self.agents.cluster.cluster_arn
        families = self._arn("ecs", f"task-definition/{prefix}-*:*")
        cluster_tasks = self._arn("ecs", f"task/{prefix}-cluster/*")
        statements = [
            iam.PolicyStatement(
                sid="RunPrefixedTaskDefinitionsOnPrefixedCluster",
                actions=["ecs:RunTask"],
                resources=[families],
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}},
            ),
            iam.PolicyStatement(
                sid="StopAndDescribeTasksOfPrefixedCluster",
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[cluster_tasks],
            ),
            iam.PolicyStatement(
                sid="ListTasksOfPrefixedCluster",
                actions=["ecs:ListTasks"],
                # ListTasks authorises against container instances, which Fargate clusters
                # have none of: AWS requires "*" here, and the ecs:cluster condition scopes it.
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}},
            ),
            iam.PolicyStatement(
                sid="DescribePrefixedCluster",
                actions=["ecs:DescribeClusters"],
                resources=[cluster_arn],
            ),
            iam.PolicyStatement(
                sid="RegisterPrefixedTaskDefinitionsTaggedWithProject",
                actions=["ecs:RegisterTaskDefinition"],
                resources=[families],
                conditions={"StringEquals": {"aws:RequestTag/Project": prefix}},
            ),
            iam.PolicyStatement(
                sid="TagOnlyWhatItCreates",
                actions=["ecs:TagResource"],
                resources=[families, cluster_tasks],
                conditions={
                    "StringEquals": {
                        "ecs:CreateAction": ["RegisterTaskDefinition", "RunTask"],
                        "aws:RequestTag/Project": prefix,
                    }
                },
            ),
            iam.PolicyStatement(
                sid="DeregisterTaskDefinitions",
                actions=["ecs:DeregisterTaskDefinition"],
                # DeregisterTaskDefinition supports no resource-level permissions or resource
                # tag conditions: AWS requires "*". It only marks a revision INACTIVE (running
                # tasks and services keep it); the platform deregisters what it registered.
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="PassOnlyAgentTaskRolesToEcsTasks",
                actions=["iam:PassRole"],
                resources=[self.agents.execution_role.role_arn, self.agents.task_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="ReadAgentRunLogs",
                actions=["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"],
                # The log group's ARN ends in ":*", which covers its streams (GetLogEvents).
                resources=[self.agents.log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="DescribeNetworkForValidation",
                actions=["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"],
                # EC2 Describe* actions support no resource-level permissions: AWS requires "*".
                # They read network metadata only (no data, no secrets).
                resources=["*"],
            ),
        ]
        policy = iam.Policy(
            self,
            "DeployerPermissions",
            policy_name=f"{platform_prefix}-deployer-permissions",
            statements=statements,
            roles=[deployer],
        )
        policy_resource = policy.node.default_child
        assert isinstance(policy_resource, CfnResource)
        self.deployer_permissions = policy_resource
        # For the customer's reviewer: why each "*" or wildcard is there, inside the template.
        policy_resource.add_metadata(
            "WhyWildcards",
            {
                "ListTasksOfPrefixedCluster": 'ecs:ListTasks takes Resource "*" (Fargate has no '
                "container instances); the ecs:cluster condition limits it to the prefixed cluster.",
                "DeregisterTaskDefinitions": "ecs:DeregisterTaskDefinition supports no "
                'resource-level permissions, so AWS requires Resource "*".',
                "DescribeNetworkForValidation": "EC2 Describe actions support no resource-level "
                'permissions, so AWS requires Resource "*"; they read network metadata only.',
                "TaskDefinitionFamilies": "task-definition/<ResourcePrefix>-*:* is every revision "
                "of the prefixed families the platform registers (one per agent).",
                "ClusterTasks": "task/<ResourcePrefix>-cluster/* is every task of the prefixed "
                "cluster; task ids are random.",
            },
        )
        for resource, reason in (
            (
                families,
                "Task-definition families are created per agent by the platform, so the family "
                "suffix and revision are wildcards; the family prefix is the customer's "
                "ResourcePrefix and registration also requires the Project request tag.",
            ),
            (
                cluster_tasks,
                "Task ids are random: the wildcard covers only tasks of the prefixed cluster.",
            ),
            (
                "*",
                "Only for actions that support no resource-level permissions (AWS requires "
                '"*"): ecs:ListTasks (limited by the ecs:cluster condition), '
                "ecs:DeregisterTaskDefinition and two EC2 network describes.",
            ),
        ):
            acknowledge(policy, f"AwsSolutions-IAM5[Resource::{nag_text(self, resource)}]", reason)
        checkov_skip(
            policy,
            CKV_AWS_111="The only unscoped write is ecs:DeregisterTaskDefinition, which supports no "
            'resource-level permissions (AWS requires "*"); every other write is limited to '
            "the prefixed cluster, families and roles.",
        )
        return deployer

    def _registration(self, config: PlatformConfig) -> None:
        topic = self.registration_topic.value_as_string
        self.register = CfnCondition(
            self, "Register", expression=Fn.condition_not(Fn.condition_equals(topic, ""))
        )
        use_platform_topic = CfnCondition(
            self,
            "UsePlatformTopic",
            expression=Fn.condition_equals(topic, REGISTRATION_DEFAULT),
        )
        platform_topic = (
            f"arn:{self.partition}:sns:{self.region}:{self.platform_account_id.value_as_string}:"
            f"{config.prefix}-registrations"
        )
        registration = cfn.CfnCustomResource(
            self,
            "Registration",
            # SNS custom resources must use a topic in the stack's own region.
            service_token=Fn.condition_if(
                use_platform_topic.logical_id, platform_topic, topic
            ).to_string(),
        )
        registration.add_override("Type", "Custom::AgentBuilderRegistration")
        registration.cfn_options.condition = self.register
        for key, value in self._connection(config).items():
            registration.add_property_override(key, value)
        # CloudFormation waits an hour for an answer by default: if the platform is gone,
        # deleting the stack should not hang that long.
        registration.add_property_override("ServiceTimeout", REGISTRATION_TIMEOUT_SECONDS)
        # Register only once the role can do its job (its permissions and the cluster's
        # capacity providers, which nothing references); on delete, disconnect before they go.
        registration.add_resource_dependency(self.deployer_permissions)
        for child in self.agents.cluster.node.find_all():
            if (
                isinstance(child, CfnResource)
                and child.cfn_resource_type == "AWS::ECS::ClusterCapacityProviderAssociations"
            ):
                registration.add_resource_dependency(child)

    def _connection(self, config: PlatformConfig) -> dict[str, Any]:
        """What the platform learns: the registration's properties and the stack's outputs."""
        return {
            "RoleArn": self.deployer.role_arn,
            "ExternalId": self.external_id.value_as_string,
            "AccountId": self.account,
            "Region": self.region,
            "ResourcePrefix": self.resource_prefix.value_as_string,
            "ClusterArn": self.agents.cluster.cluster_arn,
            "SubnetIds": self.subnet_id_list,
            "SecurityGroupId": self.network.task_security_group.security_group_id,
            "ExecutionRoleArn": self.agents.execution_role.role_arn,
            "TaskRoleArn": self.agents.task_role.role_arn,
            "LogGroupName": self.agents.log_group.log_group_name,
            "TemplateVersion": config.template_version,
        }

    def _outputs(self, config: PlatformConfig) -> None:
        descriptions = {
            "RoleArn": "The deployer role: paste it into the platform if registration is off",
            "ExternalId": "The External ID the deployer role requires",
            "ClusterArn": "The ECS cluster agent tasks run on",
            "SubnetIds": "Subnets agent tasks run in (comma-separated)",
            "SecurityGroupId": "The agent tasks' egress-only security group",
            "ExecutionRoleArn": "The role ECS uses to pull agent images and write their logs",
            "TaskRoleArn": "The role agent tasks run as (Bedrock invoke only)",
            "LogGroupName": "Where agent runs write their output",
            "TemplateVersion": f"The version of the {config.prefix} onboarding template",
        }
        for key, value in self._connection(config).items():
            if key not in descriptions:
                continue
            if key == "SubnetIds":
                value = Fn.condition_if(
                    self.create_vpc.logical_id,
                    Fn.join(",", self.network.subnets.subnet_ids),
                    Fn.join(",", self.subnet_ids.value_as_list),
                ).to_string()
            output = CfnOutput(self, f"{key}Output", value=value, description=descriptions[key])
            # Outputs have their own namespace: the plain name, beside the parameter of that name.
            output.override_logical_id(key)
            if key == "SubnetIds":
                acknowledge(
                    self,
                    "CloudFormation-Validate::W1001",
                    "The SubnetIds output refers to the new subnets only inside "
                    "Fn::If(CreateVpc, ...), which is exactly when those subnets exist; the "
                    "check does not follow the Fn::If around the Fn::Join.",
                )


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
        passed: dict[str, CfnParameter] = {
            "ExternalId": CfnParameter(
                self,
                "ExternalId",
                type="String",
                min_length=16,
                max_length=1224,
                allowed_pattern=EXTERNAL_ID_PATTERN,
                description="The organisation's External ID from the platform",
            ),
            "ResourcePrefix": CfnParameter(
                self,
                "ResourcePrefix",
                type="String",
                default=config.prefix,
                max_length=20,
                allowed_pattern=RESOURCE_PREFIX_PATTERN,
                description="Prefix of the cluster, task roles and log group in each account",
            ),
            "PlatformAccountId": CfnParameter(
                self,
                "PlatformAccountId",
                type="String",
                allowed_pattern=ACCOUNT_ID_PATTERN,
                description=f"The {config.prefix} platform's AWS account",
                default=config.platform_account_id,
            ),
            "RegistrationTopicArn": CfnParameter(
                self,
                "RegistrationTopicArn",
                type="String",
                default=REGISTRATION_DEFAULT,
                allowed_pattern=REGISTRATION_TOPIC_PATTERN,
                description="'default' (the platform's topic in DeploymentRegion), empty to "
                "skip registration, or a topic ARN",
            ),
        }
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
            # Accounts get their own VPC: an existing VPC id is per account, not per OU.
            parameters=[
                cfn.CfnStackSet.ParameterProperty(
                    parameter_key=key, parameter_value=param.value_as_string
                )
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


# StackSet TemplateBody (and CreateStack's) limit, in bytes.
TEMPLATE_BODY_LIMIT = 51_200


def _new_app(outdir: str) -> cdk.App:
    return cdk.App(context=dict(ONBOARDING_CONTEXT), analytics_reporting=False, outdir=outdir)


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
    "CustomerOnboardingStack",
    "OrganizationOnboardingStack",
    "render_customer_template",
    "render_organization_template",
]
