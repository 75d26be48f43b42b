"""The role a customer's account lets the platform work through: scoped to `<prefix>-*`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import CfnCondition, CfnResource, Duration, Fn, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.nag import acknowledge, checkov_skip, nag_text

# The tags the platform puts on what it creates: CustomerCluster.register (Project) and
# CustomerLauncher's RunTask (Project, userId, agentId, runId).
RUN_TASK_TAG_KEYS = ("Project", "agentId", "runId", "userId")
# The cost-allocation tags of an organisation's tasks (agent_builder.runs.cost_allocation_tags,
# docs/enterprise.md "Cost allocation"), on RunTask (and its tagging on create) only: the
# task is what bills; the revision it runs is registered with Project alone and deleted
# after the run.
# tests/infra/test_customer_onboarding.py holds this list to the runtime's.
COST_ALLOCATION_TAG_KEYS = ("organization", "team", "project", "user", "agent", "run")
# Global services: their requests are not made in the region the platform works in (IAM's
# is us-east-1), so a region limit must leave them out.
GLOBAL_SERVICES = ("iam", "sts")


@dataclass(frozen=True)
class RegionLimit:
    """The regions the deployer may act in, when `condition` holds (a template parameter's
    choice): `regions` is the parameter's value, a list token."""

    condition: CfnCondition
    regions: Sequence[str]

    @classmethod
    def when_listed(cls, scope: Construct, regions: Sequence[str]) -> RegionLimit:
        """A limit that holds when `regions` (a CommaDelimitedList parameter whose default
        is empty: a list of one empty string) lists any region; otherwise the deployer's
        policy is exactly what it is without the parameter."""
        condition = CfnCondition(
            scope,
            "RestrictRegions",
            expression=Fn.condition_not(Fn.condition_equals(Fn.join("", list(regions)), "")),
        )
        return cls(condition=condition, regions=regions)


def _arn(stack: Stack, service: str, resource: str) -> str:
    # Spelled out rather than format_arn, so the template reads the same to every reviewer.
    return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"


class DeployerRole(Construct):
    """The deployer role and its policy (and, with a region limit, a Deny beside it).

    Its name is fixed to the platform's (`<platform prefix>-deployer`): the platform's
    launcher role may assume only roles of exactly that name. It trusts that launcher role
    (not the account root) with the customer's External ID, and may set the source
    identity. Its permissions reach only the `prefix`-named cluster, the runner's
    task-definition family, the task roles and the log group, with every condition key
    the IAM reference offers for these actions; each wildcard says why in the metadata.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform_prefix: str,
        prefix: str,
        platform_account_id: str,
        external_id: str,
        cluster: ecs.ICluster,
        execution_role: iam.IRole,
        task_role: iam.IRole,
        log_group: logs.ILogGroup,
        task_cpu: int,
        task_memory_mib: int,
        region_limit: RegionLimit | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        launcher_arn = (
            f"arn:{stack.partition}:iam::{platform_account_id}:role/{platform_prefix}-launcher"
        )
        launcher = iam.ArnPrincipal(launcher_arn)
        self.role = deployer = iam.Role(
            self,
            "Deployer",
            # Fixed to the platform's name: the launcher may assume only <platform>-deployer.
            role_name=f"{platform_prefix}-deployer",
            description=f"{platform_prefix}: runs agent tasks on {platform_prefix}'s behalf in "
            "the prefixed cluster; assumable only by its launcher role with your External ID",
            assumed_by=launcher,
            external_ids=[external_id],
            max_session_duration=Duration.hours(1),
        )
        # The platform sets the user behind each call as the session's source identity, so
        # the customer's CloudTrail says who launched what.
        assert deployer.assume_role_policy is not None
        deployer.assume_role_policy.add_statements(
            iam.PolicyStatement(actions=["sts:SetSourceIdentity"], principals=[launcher])
        )

        cluster_arn = cluster.cluster_arn
        # The one family the platform registers (CONTRACT.md "Customer runs"), every revision.
        runner_family = _arn(stack, "ecs", f"task-definition/{prefix}-agent-runner:*")
        cluster_tasks = _arn(stack, "ecs", f"task/{prefix}-cluster/*")
        on_cluster = {"ecs:cluster": cluster_arn}
        project = {"aws:RequestTag/Project": prefix}
        ours = {"aws:ResourceTag/Project": prefix}
        # What a task may be tagged with: exactly these keys, no others (no wildcard).
        task_tag_keys = [*RUN_TASK_TAG_KEYS, *COST_ALLOCATION_TAG_KEYS]
        # Every condition key below exists for its action in the IAM service authorization
        # reference (tests/infra/test_deployer_conditions.py checks them against the data
        # parliament ships).
        statements = [
            iam.PolicyStatement(
                sid="RunTheRunnerFamilyOnPrefixedCluster",
                actions=["ecs:RunTask"],
                resources=[runner_family],
                conditions={
                    "ArnEquals": on_cluster,
                    # Only revisions the deployer itself registered (they carry the tag).
                    "StringEquals": {**project, **ours},
                    "ForAllValues:StringEquals": {"aws:TagKeys": task_tag_keys},
                    # The platform sends launchType FARGATE and no capacity-provider strategy;
                    # the revision is FARGATE-only (below), so it can run on Fargate alone.
                    "Null": {"ecs:capacity-provider": "true"},
                    # No ECS Exec shell into an agent task, no EBS volumes attached to it.
                    "StringEqualsIfExists": {
                        "ecs:enable-execute-command": "false",
                        "ecs:enable-ebs-volumes": "false",
                    },
                },
            ),
            iam.PolicyStatement(
                sid="StopAndDescribeTasksOfPrefixedCluster",
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[cluster_tasks],
                conditions={"ArnEquals": on_cluster, "StringEquals": ours},
            ),
            iam.PolicyStatement(
                sid="ListTasksOfPrefixedCluster",
                actions=["ecs:ListTasks"],
                # ListTasks authorises against container instances, which Fargate clusters
                # have none of: AWS requires "*" here, and the ecs:cluster condition scopes it.
                resources=["*"],
                conditions={"ArnEquals": on_cluster},
            ),
            iam.PolicyStatement(
                sid="DescribePrefixedCluster",
                actions=["ecs:DescribeClusters"],
                resources=[cluster_arn],
            ),
            iam.PolicyStatement(
                sid="RegisterTheRunnerFamilyTaggedWithProject",
                actions=["ecs:RegisterTaskDefinition"],
                resources=[runner_family],
                conditions={
                    "StringEquals": project,
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["Project"],
                        "ecs:compute-compatibility": ["FARGATE"],
                    },
                    # requiresCompatibilities must be given (FARGATE), not left to default.
                    "Null": {"ecs:compute-compatibility": "false"},
                    # Fargate refuses privileged containers anyway; say it in IAM too.
                    "StringEqualsIfExists": {"ecs:privileged": "false"},
                    # No bigger than the size the platform runs agents at (cdk.json
                    # testTaskCpu / testTaskMemoryMiB): a larger one needs a new template.
                    "NumericLessThanEquals": {
                        "ecs:task-cpu": str(task_cpu),
                        "ecs:task-memory": str(task_memory_mib),
                    },
                },
            ),
            iam.PolicyStatement(
                sid="TagOnlyWhatItCreates",
                actions=["ecs:TagResource"],
                resources=[runner_family, cluster_tasks],
                conditions={
                    "StringEquals": {
                        "ecs:CreateAction": ["RegisterTaskDefinition", "RunTask"],
                        **project,
                    },
                    # RunTask's tags; RegisterTaskDefinition's own statement allows Project only.
                    "ForAllValues:StringEquals": {"aws:TagKeys": task_tag_keys},
                },
            ),
            iam.PolicyStatement(
                sid="DeregisterTaskDefinitions",
                actions=["ecs:DeregisterTaskDefinition"],
                # DeregisterTaskDefinition supports no resource-level permissions or condition
                # keys: AWS requires "*". It only marks a revision INACTIVE (running tasks keep
                # it); the platform deregisters what it registered, then deletes it (below).
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="DeleteRunnerRevisionsItRegistered",
                actions=["ecs:DeleteTaskDefinitions"],
                # After each run: no revision keeps an agent's instructions or input.
                resources=[runner_family],
                conditions={"StringEquals": ours},
            ),
            iam.PolicyStatement(
                sid="PassOnlyAgentTaskRolesToEcsTasks",
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn, task_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="ReadAgentRunLogs",
                actions=["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"],
                # The log group's ARN ends in ":*", which covers its streams (GetLogEvents).
                resources=[log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="DescribeNetworkForValidation",
                actions=["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"],
                # EC2 Describe* actions support no resource-level permissions: AWS requires "*".
                # They read network metadata only (no data, no secrets).
                resources=["*"],
            ),
            # Added by issue 10 section 1; kept separate from the ECS/IAM statements.
            iam.PolicyStatement(
                sid="ConfirmOwnStackDeletion",
                # The platform believes a registration Delete only once this stack itself
                # says it is being deleted: read of this one stack, nothing else.
                actions=["cloudformation:DescribeStacks"],
                resources=[Stack.of(self).stack_id],
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
        self.permissions = policy_resource
        # The Deny policy of the region limit, when there is one (created under its condition).
        self.region_limit: CfnResource | None = (
            self._limit_regions(deployer, platform_prefix, region_limit, statements)
            if region_limit is not None
            else None
        )
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
                "RunnerFamily": "task-definition/<ResourcePrefix>-agent-runner:* is every revision "
                "of the one family the platform registers (one revision per run, deleted after).",
                "ClusterTasks": "task/<ResourcePrefix>-cluster/* is every task of the prefixed "
                "cluster; task ids are random.",
            },
        )
        for resource, reason in (
            (
                runner_family,
                "One family, <ResourcePrefix>-agent-runner; each run registers a new revision "
                "(then deletes it), so only the revision number is a wildcard. Registering also "
                "requires the Project tag, FARGATE and the platform's task size.",
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
            "the prefixed cluster, the runner family and the task roles.",
        )

    def _limit_regions(
        self,
        deployer: iam.Role,
        platform_prefix: str,
        region_limit: RegionLimit,
        statements: Sequence[iam.PolicyStatement],
    ) -> CfnResource:
        """A second policy, created only when `region_limit.condition` holds: one Deny of
        every regional action the statements allow, outside `region_limit.regions`.

        Why a Deny rather than an aws:RequestedRegion condition on each Allow: an explicit
        Deny holds whatever else is attached to the role (the organisation's limit holds
        even against the platform), a reviewer reads the whole limit in one statement, and
        the Allow statements stay exactly as reviewed. Why a policy of its own under a
        CloudFormation Condition, rather than an Fn::If statement in the first policy:
        without the parameter the stack has exactly the resources and permissions it has
        without this feature, and an Fn::If that drops a list element (AWS::NoValue) is
        what moto's CloudFormation, and so local mode's, cannot do (it keeps a null
        statement and IAM refuses the document). Why it names the actions rather than
        NotAction: it takes away nothing the role could not do anyway, and an action
        added to the Allow statements later joins it. Why iam:PassRole (any iam:/sts:
        action) stays out: those services are global, their requests are not made in the
        region the platform works in (IAM's endpoint is us-east-1), so a region limit on
        PassRole could refuse every run outside us-east-1. Leaving it out opens nothing:
        PassRole takes effect only through ecs:RegisterTaskDefinition and ecs:RunTask,
        which are denied outside the regions. Every action it names is regional (ECS,
        CloudWatch Logs, EC2, CloudFormation), so aws:RequestedRegion is in each request.
        """
        regional = sorted(
            {
                action
                for statement in statements
                for action in statement.actions
                if action.split(":")[0] not in GLOBAL_SERVICES
            }
        )
        policy = iam.Policy(
            self,
            "DeployerAllowedRegions",
            policy_name=f"{platform_prefix}-deployer-allowed-regions",
            statements=[
                iam.PolicyStatement(
                    sid="NothingOutsideAllowedRegions",
                    effect=iam.Effect.DENY,
                    actions=regional,
                    resources=["*"],
                    conditions={
                        "StringNotEquals": {"aws:RequestedRegion": list(region_limit.regions)}
                    },
                )
            ],
            roles=[deployer],
        )
        resource = policy.node.default_child
        assert isinstance(resource, CfnResource)
        resource.cfn_options.condition = region_limit.condition
        resource.add_metadata(
            "WhyWildcards",
            {
                "NothingOutsideAllowedRegions": 'A Deny on Resource "*": it takes permissions '
                "away (every action of the deployer's policy but iam:PassRole, outside "
                "AllowedRegions), it grants none."
            },
        )
        return resource


__all__ = ["COST_ALLOCATION_TAG_KEYS", "RUN_TASK_TAG_KEYS", "DeployerRole", "RegionLimit"]
