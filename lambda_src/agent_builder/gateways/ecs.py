"""The platform test cluster: run, stop and list the agent runner's tasks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

# StopTask accepts a reason of at most 255 characters.
MAX_REASON = 255


class TaskStartFailed(Exception):
    """RunTask answered without a task (its `failures` list says why)."""


@dataclass(frozen=True)
class TaskSpec:
    run_id: str
    environment: dict[str, str]
    tags: dict[str, str]


class ClusterTasks:
    """The cluster's tasks: list and stop them (all the sweeper needs)."""

    def __init__(self, client: ECSClient, *, cluster_arn: str) -> None:
        self._client = client
        self._cluster = cluster_arn

    @property
    def cluster_arn(self) -> str:
        return self._cluster

    def stop(self, task_arn: str, reason: str) -> None:
        self._client.stop_task(cluster=self._cluster, task=task_arn, reason=reason[:MAX_REASON])

    def running_tasks(self) -> Iterator[dict[str, Any]]:
        """Every task the cluster wants running, described, 100 at a time."""
        paginator = self._client.get_paginator("list_tasks")
        for page in paginator.paginate(cluster=self._cluster, desiredStatus="RUNNING"):
            arns = page.get("taskArns", [])
            for start in range(0, len(arns), 100):
                described = self._client.describe_tasks(
                    cluster=self._cluster, tasks=arns[start : start + 100]
                )
                yield from described.get("tasks", [])


class ClusterGateway(ClusterTasks):
    """Also starts the agent runner's tasks (the platform launcher)."""

    def __init__(
        self,
        client: ECSClient,
        *,
        cluster_arn: str,
        task_definition_arn: str,
        container_name: str,
        subnet_ids: tuple[str, ...],
        security_group_id: str,
        use_spot: bool,
    ) -> None:
        super().__init__(client, cluster_arn=cluster_arn)
        self._task_definition = task_definition_arn
        self._container = container_name
        self._subnets = list(subnet_ids)
        self._security_group = security_group_id
        self._use_spot = use_spot

    def run(self, spec: TaskSpec) -> str:
        """Start one runner task for the run; its ARN. startedBy carries the runId so
        the task-state events find their run without another lookup."""
        placement: dict[str, Any] = (
            {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}
            if self._use_spot
            else {"launchType": "FARGATE"}
        )
        response = self._client.run_task(
            cluster=self._cluster,
            taskDefinition=self._task_definition,
            count=1,
            startedBy=spec.run_id,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": self._subnets,
                    "securityGroups": [self._security_group],
                    # Public subnets without NAT: the task needs a public IP to reach AWS.
                    "assignPublicIp": "ENABLED",
                }
            },
            overrides={
                "containerOverrides": [
                    {
                        "name": self._container,
                        "environment": [
                            {"name": key, "value": value} for key, value in spec.environment.items()
                        ],
                    }
                ]
            },
            tags=[{"key": key, "value": value} for key, value in spec.tags.items()],
            enableECSManagedTags=True,
            **placement,
        )
        tasks = response.get("tasks") or []
        if not tasks:
            failures = response.get("failures") or []
            reason = "; ".join(
                f"{failure.get('reason', 'unknown')}"
                + (f" ({failure['detail']})" if failure.get("detail") else "")
                for failure in failures
            )
            raise TaskStartFailed(reason or "RunTask started no task")
        return str(tasks[0]["taskArn"])


def task_id(task_arn: str) -> str:
    """The id at the end of a task ARN (both the old and the cluster-named format)."""
    return task_arn.rsplit("/", 1)[-1]
