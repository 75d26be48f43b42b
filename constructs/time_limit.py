"""The test time limit: one-time schedules that stop a test task when its minutes are up."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler

from constructs import Construct
from constructs.cluster_tasks import ClusterTasks
from constructs.nag import acknowledge, nag_text


class TimeLimit(Construct):
    """A schedule group for the per-launch stop schedules, and the role they stop tasks with.

    Each launch creates a one-time schedule in the group that calls ecs:StopTask at the
    limit; deleting the stack deletes the group and its schedules.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, cluster: ClusterTasks
    ) -> None:
        super().__init__(scope, construct_id)
        self.schedule_group = scheduler.ScheduleGroup(
            self,
            "TestTimeouts",
            schedule_group_name=f"{prefix}-test-timeouts",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.schedule_group_arn = Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule-group",
            resource_name=self.schedule_group.schedule_group_name,
        )
        self.stopper_role = iam.Role(
            self,
            "TimeLimitStopper",
            description="EventBridge Scheduler stops test tasks that reach the time limit",
            # Only for schedules of this group in this account (the Scheduler guide's
            # confused-deputy conditions: SourceArn is the schedule group's ARN).
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnEquals": {"aws:SourceArn": self.schedule_group_arn},
                },
            ),
        )
        cluster.grant(self.stopper_role, "ecs:StopTask")
        # The schedules of this group: they are named after random run ids.
        self.schedules_arn = Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.schedule_group.schedule_group_name}/*",
        )

    def grant_create_schedules(self, role: iam.IRole) -> None:
        """Create stop schedules in the group, and hand them the stopper role."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["scheduler:CreateSchedule"], resources=[self.schedules_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.stopper_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        self._acknowledge_schedule_wildcard(role)

    def grant_delete_schedules(self, role: iam.IRole) -> None:
        """Delete a run's stop schedule once its task has stopped."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["scheduler:DeleteSchedule"], resources=[self.schedules_arn]
            )
        )
        self._acknowledge_schedule_wildcard(role)

    def _acknowledge_schedule_wildcard(self, role: iam.IRole) -> None:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, self.schedules_arn)}]",
            "One-time time-limit schedules are named after random run ids; the wildcard is "
            "limited to the platform's own schedule group.",
        )


__all__ = ["TimeLimit"]
