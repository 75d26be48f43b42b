"""Stack 4, customer onboarding: the template a Tier 2 customer launches in their own account.

It is never part of the platform app (`cdk deploy --all` must not create a deployer role in
the platform's own account): `render_customer_template` (stacks/onboarding_templates.py)
builds it in a separate, bootstrapless `cdk.App` and returns plain CloudFormation YAML,
which `scripts/export_templates.py` writes to `dist/customer-onboarding.yaml` and the
platform stack publishes for Launch Stack links. Its parameters are declared in
stacks/onboarding_parameters.py, shared with the organisation template.

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

from typing import Any

import aws_cdk as cdk
from aws_cdk import (
    BootstraplessSynthesizer,
    CfnCondition,
    CfnOutput,
    CfnResource,
    Fn,
    Token,
)
from aws_cdk import aws_cloudformation as cfn
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.agent_cluster import AgentCluster
from constructs.agent_network import AgentNetwork
from constructs.deployer_role import DeployerRole, RegionLimit
from constructs.nag import acknowledge, checkov_skip, nag_text
from stacks.config import PlatformConfig
from stacks.logical_ids import DeployedIdsStack
from stacks.onboarding_parameters import REGISTRATION_DEFAULT, declare_customer_parameters
from stacks.template_release import RELEASE_CHANGES, RELEASE_VERSION

REGISTRATION_TIMEOUT_SECONDS = 300


class CustomerOnboardingStack(DeployedIdsStack):
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
        parameters = declare_customer_parameters(self, config.prefix, config.platform_account_id)
        self.external_id = parameters["ExternalId"]
        self.registration_token = parameters["RegistrationToken"]
        self.resource_prefix = parameters["ResourcePrefix"]
        self.platform_account_id = parameters["PlatformAccountId"]
        self.vpc_id = parameters["VpcId"]
        self.subnet_ids = parameters["SubnetIds"]
        self.registration_topic = parameters["RegistrationTopicArn"]
        self.allowed_regions = parameters["AllowedRegions"]
        if config.template_version == RELEASE_VERSION:
            self.template_options.metadata = {
                **(self.template_options.metadata or {}),
                "ReleaseNotes": {"Version": RELEASE_VERSION, "Changes": list(RELEASE_CHANGES)},
            }
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
        region_limit = RegionLimit.when_listed(self, self.allowed_regions.value_as_list)
        self.restrict_regions = region_limit.condition
        # The deployer role moved into a construct after customers launched this template:
        # its role and policy keep their logical ids (stacks/logical_ids.py).
        deployer = self.transparent(
            DeployerRole(
                self,
                "DeployerRole",
                platform_prefix=platform_prefix,
                prefix=prefix,
                platform_account_id=self.platform_account_id.value_as_string,
                external_id=self.external_id.value_as_string,
                cluster=self.agents.cluster,
                execution_role=self.agents.execution_role,
                task_role=self.agents.task_role,
                log_group=self.agents.log_group,
                task_cpu=config.test_task_cpu,
                task_memory_mib=config.test_task_memory_mib,
                region_limit=region_limit,
            )
        )
        self.deployer, self.deployer_permissions = deployer.role, deployer.permissions
        self._registration(config)
        self._outputs(config)
        self.keep_deployed_ids()

    # -------------------------------------------------------------------------------------------

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
        # Not an output: the single-use proof that this registration comes from the user's link.
        registration.add_property_override(
            "RegistrationToken", self.registration_token.value_as_string
        )
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


__all__ = ["CustomerOnboardingStack"]
