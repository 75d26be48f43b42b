"""ECS "Task State Change" events -> run records.

The event names its run through `startedBy` (the launch sets it to the runId). Every
write is conditional on the status rank, so duplicate and out-of-order events (which
EventBridge does deliver) never move a run backwards. When a task stops, its
time-limit schedule is deleted, and a test whose task never ran (or that Fargate Spot
reclaimed) is given back: the user got nothing for it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.gateways.scheduler import TimeLimitCanceller
from agent_builder.repositories.ledger import LaunchLedger
from agent_builder.repositories.runs import RunsRepository
from agent_builder.runs import STOPPED, gives_test_back, task_state
from agent_builder.validation import valid_id

logger = Logger(child=True)


class TaskEventService:
    def __init__(
        self,
        runs: RunsRepository,
        ledger: LaunchLedger,
        schedules: TimeLimitCanceller,
        *,
        cluster_arn: str,
        container_name: str,
        retention_days: int,
    ) -> None:
        self._runs = runs
        self._ledger = ledger
        self._schedules = schedules
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
        status, fields = task_state(
            detail,
            container_name=self._container,
            now=timeutil.utcnow(),
            retention=self._retention,
        )
        if status == STOPPED:
            return self._stopped(run_id, task_arn, fields)
        applied = self._runs.advance(run_id, task_arn, status, fields)
        logger.info("task state", run_id=run_id, status=status, applied=applied)
        return "applied" if applied else "stale"

    def _stopped(self, run_id: str, task_arn: str, fields: dict[str, Any]) -> str:
        refund = gives_test_back(fields)
        # Either way the run gives back its slot of the platform's running-task ceiling,
        # in the same transaction as its terminal update (repositories/ledger.py).
        run = self._runs.get(run_id)
        if run is None:
            applied = False
        elif refund:
            applied = self._ledger.finish_and_refund(
                run, status=STOPPED, fields=fields, task_arn=task_arn
            )
        else:
            applied = self._ledger.finish(run, status=STOPPED, fields=fields, task_arn=task_arn)
        # Idempotent: a schedule that already fired deleted itself.
        self._schedules.cancel(run_id)
        logger.info(
            "task stopped",
            run_id=run_id,
            applied=applied,
            refunded=refund and applied,
            exit_code=fields["exitCode"],
            stop_code=fields["stopCode"],
        )
        return ("refunded" if refund else "applied") if applied else "stale"
