"""EventBridge Scheduler: the one-time schedule that stops a test at its time limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agent_builder.repositories.dynamo import error_code

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

# Universal target: Scheduler calls ECS StopTask itself, no Lambda in between.
STOP_TASK_TARGET = "arn:aws:scheduler:::aws-sdk:ecs:stopTask"


def time_limit_reason(minutes: int) -> str:
    return f"agent-builder: time limit of {minutes} minutes reached"


class TimeLimitCanceller:
    """Deletes a run's schedule: all the task-events function does with schedules."""

    def __init__(self, client: EventBridgeSchedulerClient, *, group_name: str) -> None:
        self._client = client
        self._group = group_name

    def cancel(self, run_id: str) -> bool:
        """Delete the run's schedule; False if it is already gone (fired, or never made)."""
        from botocore.exceptions import ClientError

        try:
            self._client.delete_schedule(Name=run_id, GroupName=self._group)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True


class TimeLimitScheduler(TimeLimitCanceller):
    """Also makes the schedule, which stops the task with the scheduler's own role."""

    def __init__(
        self,
        client: EventBridgeSchedulerClient,
        *,
        group_name: str,
        role_arn: str,
        cluster_arn: str,
    ) -> None:
        super().__init__(client, group_name=group_name)
        self._role = role_arn
        self._cluster = cluster_arn

    def schedule_stop(self, run_id: str, task_arn: str, at: datetime, minutes: int) -> None:
        # at() takes whole seconds; round up so the stop is never early.
        at = at.astimezone(UTC)
        if at.microsecond:
            at = at.replace(microsecond=0) + timedelta(seconds=1)
        self._client.create_schedule(
            Name=run_id,
            GroupName=self._group,
            ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Description=f"Stop the test task of run {run_id} at its time limit",
            Target={
                "Arn": STOP_TASK_TARGET,
                "RoleArn": self._role,
                "Input": json.dumps(
                    {
                        "Cluster": self._cluster,
                        "Task": task_arn,
                        "Reason": time_limit_reason(minutes),
                    }
                ),
                "RetryPolicy": {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 10},
            },
        )
