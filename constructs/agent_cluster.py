"""Where agent tasks run: the ECS cluster, their log group and their two IAM roles."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.nag import LOG_GROUP_KMS_REASON, acknowledge, checkov_skip

# Cross-region inference profiles are model ids with a geography in front.
_INFERENCE_PROFILE = re.compile(r"^(us|eu|apac|us-gov|global)\.(.+)$")


def cluster_name(prefix: str) -> str:
    """The agent cluster's physical name: the customer role and grants are scoped by it."""
    return f"{prefix}-cluster"


def run_log_group_name(prefix: str) -> str:
    """Where agent runs write their output (the runner's awslogs streams)."""
    return f"/{prefix}/agent-runs"


def bedrock_model_arns(scope: Construct, models: Sequence[str]) -> list[str]:
    """The ARNs invoking these model ids needs, and no others.

    A foundation model is invoked in the stack's own region. A cross-region inference
    profile routes each request to its model in any region the profile spans, which
    AWS authorises against the foundation model there: that grant needs a region wildcard.
    """
    stack = Stack.of(scope)
    arns: list[str] = []
    for model in models:
        profile = _INFERENCE_PROFILE.fullmatch(model)
        if profile:
            arns.append(
                f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:inference-profile/{model}"
            )
            arns.append(f"arn:{stack.partition}:bedrock:*::foundation-model/{profile.group(2)}")
        else:
            arns.append(f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model}")
    return sorted(set(arns))


def ecs_tasks_principal(scope: Construct, *, source_arn: bool) -> iam.ServicePrincipal:
    """ecs-tasks.amazonaws.com, only on behalf of this account (confused-deputy guard).

    ECS's task IAM role guide recommends aws:SourceAccount and an aws:SourceArn of the
    account's ECS resources in this region (`arn:...:ecs:<region>:<account>:*`) for task
    roles; for the execution role it documents neither, so it gets aws:SourceAccount,
    which every service principal's request carries, and not a SourceArn that ECS might
    not send (a wrong guess there would stop every task from pulling its image).
    """
    stack = Stack.of(scope)
    conditions: dict[str, dict[str, str]] = {"StringEquals": {"aws:SourceAccount": stack.account}}
    if source_arn:
        conditions["ArnLike"] = {
            "aws:SourceArn": f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:*"
        }
    return iam.ServicePrincipal("ecs-tasks.amazonaws.com", conditions=conditions)


class AgentCluster(Construct):
    """An ECS cluster for agent tasks with FARGATE and FARGATE_SPOT, plus what tasks use.

    Physical names carry the prefix on purpose: the customer's deployer role is scoped
    to `<prefix>-*` clusters and roles and `/<prefix>/*` log groups, so the names are
    the security boundary.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        vpc: ec2.IVpc,
        allowed_models: Sequence[str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name(prefix),
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            enable_fargate_capacity_providers=True,
        )
        self.log_group = logs.LogGroup(
            self,
            "RunLogs",
            log_group_name=run_log_group_name(prefix),
            retention=log_retention,
            removal_policy=removal_policy,
        )
        checkov_skip(self.log_group, CKV_AWS_158=LOG_GROUP_KMS_REASON)
        # Container Insights writes here; ECS would create the group on first use, outside
        # the stack, and deleting the stack would leave it behind with no retention.
        insights = logs.LogGroup(
            self,
            "InsightsLogs",
            log_group_name=f"/aws/ecs/containerinsights/{cluster_name(prefix)}/performance",
            retention=log_retention,
            removal_policy=removal_policy,
        )
        checkov_skip(insights, CKV_AWS_158=LOG_GROUP_KMS_REASON)
        self.cluster.node.add_dependency(insights)
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            role_name=f"{prefix}-task-execution",
            description="ECS pulls the agent image and ships its logs with this role",
            assumed_by=ecs_tasks_principal(self, source_arn=False),
        )
        # Written out rather than the AWS managed policy, whose logs grant is account-wide.
        self.log_group.grant_write(self.execution_role)
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrAuthToken",
                actions=["ecr:GetAuthorizationToken"],
                # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
                resources=["*"],
            )
        )
        acknowledge(
            self.execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource-level permissions (AWS requires "
            'Resource "*"); the token alone grants nothing: image pulls are limited to '
            "the repositories that grant this role.",
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            role_name=f"{prefix}-agent-task",
            description="What the agent runner itself may do: invoke the allowed Bedrock models",
            assumed_by=ecs_tasks_principal(self, source_arn=True),
        )
        model_arns = bedrock_model_arns(self, allowed_models)
        self.task_role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeAllowedModels",
                # Converse needs InvokeModel; ConverseStream (the runner's call) needs
                # InvokeModelWithResponseStream.
                actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                resources=model_arns,
            )
        )
        for arn in model_arns:
            if ":bedrock:*::" in arn:
                acknowledge(
                    self.task_role,
                    f"AwsSolutions-IAM5[Resource::{arn.replace(Stack.of(self).partition, '<AWS::Partition>')}]",
                    "A cross-region inference profile from allowedModels sends requests to its "
                    "foundation model in whichever region it spans; AWS authorises each against "
                    "that region's model ARN, so only the region is a wildcard, not the model.",
                )
