"""Grants on the tasks of one ECS cluster, for roles in any stack of the platform."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from constructs import IConstruct
from constructs.nag import acknowledge, nag_text


class ClusterTasks:
    """The tasks of the cluster named `cluster_name`, whose ARN is `cluster_arn`.

    ARNs are spelled from the cluster's literal name (its physical name is fixed by the
    prefix scheme) so they read plainly in templates and in cdk-nag's findings; the
    `ecs:cluster` condition names the cluster again by its ARN.
    """

    TASK_IDS_REASON = (
        "Task ids are random and only known at launch; the wildcard is limited to tasks of "
        "the platform's test cluster, and the ecs:cluster condition pins the cluster again."
    )

    def __init__(self, *, cluster_name: str, cluster_arn: str) -> None:
        self.cluster_name = cluster_name
        self.cluster_arn = cluster_arn
        self._acknowledged: set[str] = set()

    def tasks_arn(self, scope: IConstruct) -> str:
        return Stack.of(scope).format_arn(
            service="ecs", resource="task", resource_name=f"{self.cluster_name}/*"
        )

    def grant(self, role: iam.IRole, *actions: str) -> None:
        """Task-level `actions` (StopTask, DescribeTasks) on this cluster's tasks only."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.tasks_arn(role)],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster_arn}},
            )
        )
        self._acknowledge_task_wildcard(role)

    def grant_tag_on_launch(self, role: iam.IRole) -> None:
        """Tag the tasks `role` starts, and only while starting them (RunTask's tags)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[self.tasks_arn(role)],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        self._acknowledge_task_wildcard(role)

    def grant_list(self, role: iam.IRole) -> None:
        """ecs:ListTasks, which AWS authorises against the cluster's container instances."""
        instances = Stack.of(role).format_arn(
            service="ecs", resource="container-instance", resource_name=f"{self.cluster_name}/*"
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:ListTasks"],
                resources=[instances],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster_arn}},
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_text(role, instances)}]",
            "ecs:ListTasks is authorised against container-instance ARNs; the wildcard covers "
            "only the test cluster's, and the ecs:cluster condition pins the cluster again.",
        )

    def _acknowledge_task_wildcard(self, role: iam.IRole) -> None:
        """cdk-nag's IAM5 on the task wildcard, accepted once per role."""
        if role.node.path in self._acknowledged:
            return
        self._acknowledged.add(role.node.path)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_text(role, self.tasks_arn(role))}]",
            self.TASK_IDS_REASON,
        )


__all__ = ["ClusterTasks"]
