"""What the platform does in a connected customer account, through the deployer role.

AccountProbe: the read-only checks that validate a connection. ECS has no dry run and
iam:PassRole cannot be tried without side effects, so the probes are the reads that the
deployer role's policy grants on exactly the resources a deployment uses: the cluster
(DescribeClusters, ListTasks on it), the security group and subnets (EC2 describes) and
the run log group (DescribeLogStreams). A deployment's writes (RegisterTaskDefinition,
PassRole, RunTask) are proved by the first deployment, which reports which step failed.
For a pasted role, `onboarding_stack` then reads the stack's `TemplateVersion` output
(cloudformation:DescribeStacks, which the template grants on the stack's own ARN); it is
informational and never fails a connection.

CustomerCluster: register a per-run task-definition revision, run it, deregister and
delete it, and describe the task later (no EventBridge from customer accounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder.errors import RoleValidationFailed
from agent_builder.gateways.ecs import TaskStartFailed
from agent_builder.gateways.role_chain import CustomerSession
from agent_builder.repositories.dynamo import error_code
from agent_builder.validation import STACK_ARN, parse_version

logger = Logger(child=True)

DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)
UPDATE_STACK = "update the onboarding stack to the current template"


def _denied(check: str, operation: str, resource: str) -> RoleValidationFailed:
    # Retryable: a policy attached seconds ago may not be in effect yet.
    return RoleValidationFailed(
        check,
        f"the role may not call {operation} on {resource}; {UPDATE_STACK}",
        retryable=True,
    )


def _client_error(exc: Exception) -> str | None:
    from botocore.exceptions import ClientError

    return error_code(exc) if isinstance(exc, ClientError) else None


class TaskDefinitionNotDeleted(Exception):
    """DeleteTaskDefinitions answered a failure for the revision (ECS reports, not raises)."""


UNKNOWN_VERSION = "unknown"


@dataclass(frozen=True)
class OnboardingStack:
    """What the onboarding stack says about itself: its template version and its id."""

    template_version: str
    stack_id: str | None


@dataclass(frozen=True)
class Network:
    subnet_ids: tuple[str, ...]
    security_group_id: str


class AccountProbe:
    def __init__(self, session: CustomerSession) -> None:
        self._session = session
        self._ecs = session.client("ecs")
        self._ec2 = session.client("ec2")

    def cluster(self, cluster: str) -> str:
        """The cluster's ARN if it exists and is ACTIVE."""
        try:
            response = self._ecs.describe_clusters(clusters=[cluster])
        except Exception as exc:
            if _client_error(exc) in DENIED:
                raise _denied("cluster", "ecs:DescribeClusters", cluster) from None
            raise
        found = response.get("clusters") or []
        if not found:
            raise RoleValidationFailed(
                "cluster",
                f"no ECS cluster {cluster} in {self._session.region}: launch the onboarding "
                "stack in this region, or connect the region the stack is in",
            )
        status = found[0].get("status")
        if status != "ACTIVE":
            raise RoleValidationFailed(
                "cluster", f"the ECS cluster {cluster} is {status}, not ACTIVE"
            )
        return str(found[0]["clusterArn"])

    def tasks(self, cluster_arn: str) -> None:
        try:
            self._ecs.list_tasks(cluster=cluster_arn, maxResults=1)
        except Exception as exc:
            if _client_error(exc) in DENIED:
                raise _denied("tasks", "ecs:ListTasks", cluster_arn) from None
            raise

    def network(
        self,
        *,
        prefix: str,
        subnet_ids: tuple[str, ...] | None,
        security_group_id: str | None,
    ) -> Network:
        """The registered network, checked; or, for a pasted role, the template's: the
        security group named `<prefix>-agent-tasks` and the public subnets of its VPC
        that the template tagged."""
        group = self._security_group(prefix, security_group_id)
        vpc = group["VpcId"]
        subnets = self._subnets(prefix, vpc, subnet_ids)
        return Network(subnet_ids=subnets, security_group_id=str(group["GroupId"]))

    def _security_group(self, prefix: str, group_id: str | None) -> dict[str, Any]:
        name = f"{prefix}-agent-tasks"
        params: dict[str, Any] = (
            {"GroupIds": [group_id]}
            if group_id
            else {"Filters": [{"Name": "group-name", "Values": [name]}]}
        )
        what = group_id or name
        try:
            groups = self._ec2.describe_security_groups(**params).get("SecurityGroups") or []
        except Exception as exc:
            code = _client_error(exc)
            if code in DENIED:
                raise _denied("securityGroup", "ec2:DescribeSecurityGroups", what) from None
            if code in (
                "InvalidGroup.NotFound",
                "InvalidGroupId.NotFound",
                "InvalidGroupId.Malformed",
            ):
                groups = []
            else:
                raise
        if len(groups) != 1:
            raise RoleValidationFailed(
                "securityGroup",
                f"no security group {what} in {self._session.region}"
                if not groups
                else f"more than one security group is named {name}",
            )
        return dict(groups[0])

    def _subnets(
        self, prefix: str, vpc_id: str, subnet_ids: tuple[str, ...] | None
    ) -> tuple[str, ...]:
        params: dict[str, Any] = (
            {"SubnetIds": list(subnet_ids)}
            if subnet_ids
            else {
                "Filters": [
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "tag:aws-cdk:subnet-type", "Values": ["Public"]},
                    {"Name": "tag:Project", "Values": [prefix]},
                ]
            }
        )
        what = ", ".join(subnet_ids) if subnet_ids else f"the public subnets of {vpc_id}"
        try:
            subnets = self._ec2.describe_subnets(**params).get("Subnets") or []
        except Exception as exc:
            code = _client_error(exc)
            if code in DENIED:
                raise _denied("subnets", "ec2:DescribeSubnets", what) from None
            if code in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                subnets = []
            else:
                raise
        if not subnets or (subnet_ids and len(subnets) != len(subnet_ids)):
            raise RoleValidationFailed(
                "subnets",
                f"subnets not found in {self._session.region}: {what}"
                + ("" if subnet_ids else " (an existing VPC? give subnetIds and securityGroupId)"),
            )
        other = sorted({s["SubnetId"] for s in subnets if s.get("VpcId") != vpc_id})
        if other:
            raise RoleValidationFailed(
                "subnets",
                f"subnets {', '.join(other)} are not in the security group's VPC {vpc_id}",
            )
        return tuple(sorted(str(s["SubnetId"]) for s in subnets))

    def onboarding_stack(self, stack_name: str, *, role_arn: str) -> OnboardingStack:
        """The stack's TemplateVersion output and StackId; `unknown` (and no id) when the
        stack cannot be read (a template before the role could describe its own stack, a
        renamed stack, a throttled call) or is not the stack of `role_arn`."""
        from botocore.exceptions import BotoCoreError, ClientError

        unknown = OnboardingStack(UNKNOWN_VERSION, None)
        try:
            stacks = self._session.client("cloudformation").describe_stacks(StackName=stack_name)[
                "Stacks"
            ]
        except (ClientError, BotoCoreError) as exc:
            logger.info(
                "onboarding stack not readable; template version unknown",
                stack=stack_name,
                error=_client_error(exc) or type(exc).__name__,
            )
            return unknown
        if len(stacks) != 1:
            return unknown
        outputs = {
            str(o.get("OutputKey")): o.get("OutputValue") for o in stacks[0].get("Outputs") or []
        }
        version = outputs.get("TemplateVersion")
        stack_id = str(stacks[0].get("StackId") or "")
        account, region = role_arn.split(":")[4], self._session.region
        stack = STACK_ARN.match(stack_id)
        if (
            outputs.get("RoleArn") != role_arn
            or parse_version(version) is None
            or stack is None
            or (stack["account"], stack["region"]) != (account, region)
        ):
            logger.info("onboarding stack is not this role's; template version unknown")
            return unknown
        return OnboardingStack(str(version), stack_id)

    def log_group(self, name: str) -> None:
        logs = self._session.client("logs")
        try:
            logs.describe_log_streams(logGroupName=name, limit=1)
        except Exception as exc:
            code = _client_error(exc)
            if code in DENIED:
                raise _denied("logGroup", "logs:DescribeLogStreams", name) from None
            if code == "ResourceNotFoundException":
                raise RoleValidationFailed(
                    "logGroup", f"no log group {name} in {self._session.region}"
                ) from None
            raise


@dataclass(frozen=True)
class CustomerTask:
    family: str
    image: str
    environment: dict[str, str]
    execution_role_arn: str
    task_role_arn: str
    log_group: str
    log_stream_prefix: str
    container_name: str
    cpu: int
    memory_mib: int
    architecture: str
    tags: dict[str, str]


class CustomerCluster:
    def __init__(self, session: CustomerSession, cluster_arn: str) -> None:
        self._ecs = session.client("ecs")
        self._region = session.region
        self._cluster = cluster_arn

    def register(self, task: CustomerTask, project: str) -> str:
        response = self._ecs.register_task_definition(
            family=task.family,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=str(task.cpu),
            memory=str(task.memory_mib),
            runtimePlatform={
                "cpuArchitecture": task.architecture,
                "operatingSystemFamily": "LINUX",
            },
            executionRoleArn=task.execution_role_arn,
            taskRoleArn=task.task_role_arn,
            containerDefinitions=[
                {
                    "name": task.container_name,
                    "image": task.image,
                    "essential": True,
                    # Container-level memory too: ECS accepts it, and emulators need it.
                    "memory": task.memory_mib,
                    "readonlyRootFilesystem": True,
                    "environment": [
                        {"name": key, "value": value} for key, value in task.environment.items()
                    ],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": task.log_group,
                            "awslogs-region": self._region,
                            "awslogs-stream-prefix": task.log_stream_prefix,
                        },
                    },
                }
            ],
            # The deployer role may register only with this request tag.
            tags=[{"key": "Project", "value": project}],
        )
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def run(
        self,
        task_definition_arn: str,
        *,
        run_id: str,
        network: Network,
        tags: dict[str, str],
    ) -> str:
        response = self._ecs.run_task(
            cluster=self._cluster,
            taskDefinition=task_definition_arn,
            count=1,
            launchType="FARGATE",
            startedBy=run_id,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(network.subnet_ids),
                    "securityGroups": [network.security_group_id],
                    # The template's subnets are public, without NAT.
                    "assignPublicIp": "ENABLED",
                }
            },
            tags=[{"key": key, "value": value} for key, value in tags.items()],
        )
        tasks = response.get("tasks") or []
        if not tasks:
            failures = response.get("failures") or []
            reason = "; ".join(
                str(failure.get("reason", "unknown"))
                + (f" ({failure['detail']})" if failure.get("detail") else "")
                for failure in failures
            )
            raise TaskStartFailed(reason or "RunTask started no task")
        return str(tasks[0]["taskArn"])

    def deregister(self, task_definition_arn: str) -> None:
        self._ecs.deregister_task_definition(taskDefinition=task_definition_arn)

    def delete(self, task_definition_arn: str) -> None:
        """Delete a deregistered revision, so it no longer holds the run's request.

        ECS keeps it DELETE_IN_PROGRESS (invisible to lists) while a task still uses it,
        and removes it once none does; a task already started is not disturbed.
        """
        response = self._ecs.delete_task_definitions(taskDefinitions=[task_definition_arn])
        failures = response.get("failures") or []
        if failures:
            reasons = "; ".join(str(f.get("reason", "unknown")) for f in failures)
            raise TaskDefinitionNotDeleted(reasons)

    def describe(self, task_arn: str) -> dict[str, Any] | None:
        response = self._ecs.describe_tasks(cluster=self._cluster, tasks=[task_arn])
        tasks = response.get("tasks") or []
        return dict(tasks[0]) if tasks else None
