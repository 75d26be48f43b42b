"""ECS "Task State Change" events -> run records.

The event names its run through `startedBy` (the launch sets it to the runId). Every
write is conditional on the status rank, so duplicate and out-of-order events (which
EventBridge does deliver) never move a run backwards. When a task stops, its
time-limit schedule is deleted; a run whose task never reached RUNNING (no capacity,
image pull failure, stopped while still provisioning) or that was reclaimed by Fargate
Spot gets its test back: the user got nothing for it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.gateways.scheduler import TimeLimitScheduler
from agent_builder.repositories.ledger import LaunchLedger
from agent_builder.repositories.runs import PENDING, RUNNING, STOPPED, RunsRepository
from agent_builder.services.agents import valid_id

logger = Logger(child=True)

# ECS lastStatus -> run status. The states after RUNNING count as RUNNING only if the
# task had started (startedAt present); otherwise it is still the launch going on.
AFTER_START = {"RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"}
REFUNDED_STOP_CODES = {"TaskFailedToStart", "SpotInterruption"}


def task_status(detail: dict[str, Any]) -> str:
    last = detail.get("lastStatus")
    if last == "STOPPED":
        return STOPPED
    if last in AFTER_START and detail.get("startedAt"):
        return RUNNING
    return PENDING


def iso_or_none(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return timeutil.iso(timeutil.parse_iso(value))
    except ValueError:
        return None


def exit_code(detail: dict[str, Any], container_name: str) -> int | None:
    for container in detail.get("containers") or []:
        if container.get("name") == container_name and isinstance(container.get("exitCode"), int):
            return int(container["exitCode"])
    return None


class TaskEventService:
    def __init__(
        self,
        runs: RunsRepository,
        ledger: LaunchLedger,
        scheduler: TimeLimitScheduler,
        *,
        cluster_arn: str,
        container_name: str,
        retention_days: int,
    ) -> None:
        self._runs = runs
        self._ledger = ledger
        self._scheduler = scheduler
        self._cluster = cluster_arn
        self._container = container_name
        self._retention = timedelta(days=retention_days)

    def handle(self, detail: dict[str, Any]) -> str:
        """Apply one event; returns what happened (for logs and tests)."""
        run_id = detail.get("startedBy")
        task_arn = detail.get("taskArn")
        if detail.get("clusterArn") != self._cluster or not isinstance(task_arn, str):
            logger.warning("event is not about the test cluster", cluster=detail.get("clusterArn"))
            return "ignored"
        if not isinstance(run_id, str) or not valid_id(run_id):
            logger.warning("task was not started by a run", task_arn=task_arn)
            return "ignored"
        status = task_status(detail)
        fields: dict[str, Any] = {"lastStatus": detail.get("lastStatus")}
        started = iso_or_none(detail.get("startedAt"))
        if status in (RUNNING, STOPPED) and started:
            fields["startedAt"] = started
        if status == STOPPED:
            return self._stopped(run_id, task_arn, detail, fields, started)
        applied = self._runs.advance(run_id, task_arn, status, fields)
        logger.info("task state", run_id=run_id, status=status, applied=applied)
        return "applied" if applied else "stale"

    def _stopped(
        self,
        run_id: str,
        task_arn: str,
        detail: dict[str, Any],
        fields: dict[str, Any],
        started: str | None,
    ) -> str:
        stopped_at = iso_or_none(detail.get("stoppedAt")) or timeutil.iso(timeutil.utcnow())
        stop_code = detail.get("stopCode")
        fields.update(
            stoppedAt=stopped_at,
            stopReason=str(detail.get("stoppedReason") or stop_code or "stopped")[:1024],
            stopCode=stop_code,
            exitCode=self._exit_code(detail),
            expiresAt=timeutil.epoch(timeutil.parse_iso(stopped_at) + self._retention),
        )
        refund = not started or stop_code in REFUNDED_STOP_CODES
        if refund:
            run = self._runs.get(run_id)
            if run is None:
                applied = False
            else:
                applied = self._ledger.finish_and_refund(
                    run, status=STOPPED, fields=fields, task_arn=task_arn
                )
        else:
            applied = self._runs.advance(run_id, task_arn, STOPPED, fields)
        # Idempotent: a schedule that already fired deleted itself.
        self._scheduler.cancel(run_id)
        logger.info(
            "task stopped",
            run_id=run_id,
            applied=applied,
            refunded=refund and applied,
            exit_code=fields["exitCode"],
            stop_code=stop_code,
        )
        return ("refunded" if refund else "applied") if applied else "stale"

    def _exit_code(self, detail: dict[str, Any]) -> int | None:
        return exit_code(detail, self._container)
