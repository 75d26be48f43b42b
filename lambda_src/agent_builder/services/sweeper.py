"""The time-limit backstop: stop every test task older than the limit.

The one-time schedule made at launch stops each task at its limit; this runs every
minute and catches whatever that missed (a schedule that failed to fire, a task
started by hand), so no task outlives its limit by more than about a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.gateways.ecs import ClusterTasks

logger = Logger(child=True)


def sweeper_reason(minutes: int) -> str:
    return f"agent-builder: sweeper stopped the task past the time limit of {minutes} minutes"


@dataclass
class SweepReport:
    checked: int = 0
    stopped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        cluster: ClusterTasks,
        *,
        max_test_minutes: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._cluster = cluster
        self._minutes = max_test_minutes
        self._clock = clock

    def sweep(self) -> SweepReport:
        deadline = self._clock() - timedelta(minutes=self._minutes)
        report = SweepReport()
        for task in self._cluster.running_tasks():
            report.checked += 1
            created = task.get("createdAt")
            if not isinstance(created, datetime) or created > deadline:
                continue
            arn = task["taskArn"]
            try:
                self._cluster.stop(arn, sweeper_reason(self._minutes))
            except Exception:
                # One stubborn task must not shield the others; next minute retries it.
                logger.exception("could not stop an overdue task", task_arn=arn)
                report.failed.append(arn)
                continue
            logger.warning(
                "stopped an overdue task", task_arn=arn, started_by=task.get("startedBy")
            )
            report.stopped.append(arn)
        return report
