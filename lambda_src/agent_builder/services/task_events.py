"""ECS "Task State Change" events -> run records.

The event names its run through `startedBy` (the launch sets it to the runId). Every
write is conditional on the status rank, so duplicate and out-of-order events (which
EventBridge does deliver) never move a run backwards. When a task stops, its
time-limit schedule is deleted, and a test whose task never ran (or that Fargate Spot
reclaimed) is given back: the user got nothing for it. A stopped run gets its receipt
(agent_builder/receipts.py), from the runner's result.json and ECS's times.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.gateways.artifacts import ArtifactsGateway
from agent_builder.gateways.scheduler import TimeLimitCanceller
from agent_builder.repositories.ledger import LaunchLedger
from agent_builder.repositories.runs import RunsRepository
from agent_builder.runs import FINAL, STOPPED, gives_test_back, task_state
from agent_builder.validation import valid_id

if TYPE_CHECKING:
    # The price table is imported when a run stops, not by the API's cold start (wiring
    # imports this module).
    from agent_builder.pricing import TaskSize
    from agent_builder.receipts import Spend

logger = Logger(child=True)


class TaskEventService:
    def __init__(
        self,
        runs: RunsRepository,
        ledger: LaunchLedger,
        schedules: TimeLimitCanceller,
        artifacts: ArtifactsGateway,
        size: TaskSize,
        *,
        cluster_arn: str,
        container_name: str,
        retention_days: int,
    ) -> None:
        self._runs = runs
        self._ledger = ledger
        self._schedules = schedules
        self._artifacts = artifacts
        self._size = size
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
            return self._stopped(run_id, task_arn, fields, detail.get("pullStartedAt"))
        applied = self._runs.advance(run_id, task_arn, status, fields)
        logger.info("task state", run_id=run_id, status=status, applied=applied)
        return "applied" if applied else "stale"

    def _stopped(
        self, run_id: str, task_arn: str, fields: dict[str, Any], pull_started: Any
    ) -> str:
        refund = gives_test_back(fields)
        # Either way the run gives back its slot of the platform's running-task ceiling,
        # and its receipt is added to its month, in the same transaction as its terminal
        # update (repositories/ledger.py).
        run = self._runs.get(run_id)
        if run is None or run.get("status") in FINAL or run.get("taskArn") not in (None, task_arn):
            applied = False  # stale: nothing to price, nothing to write
        else:
            receipt, spent = self._receipt(run, fields, pull_started)
            fields = {**fields, "receipt": receipt}
            if refund:
                applied = self._ledger.finish_and_refund(
                    run, status=STOPPED, fields=fields, task_arn=task_arn, spent=spent
                )
            else:
                applied = self._ledger.finish(
                    run, status=STOPPED, fields=fields, task_arn=task_arn, spent=spent
                )
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

    def _receipt(
        self, run: dict[str, Any], fields: dict[str, Any], pull_started: Any
    ) -> tuple[dict[str, Any], Spend]:
        from agent_builder.receipts import receipt, tokens

        # A task that never started wrote no result: nothing to read.
        result = self._artifacts.read_result(run["runId"]) if fields.get("startedAt") else None
        if result is None and fields.get("startedAt"):
            logger.warning("the runner left no readable result: receipt without tokens")
        input_tokens, output_tokens = tokens(result)
        return receipt(
            model=run.get("model"),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            started_at=fields.get("startedAt"),
            stopped_at=fields.get("stoppedAt"),
            billed_from=pull_started if isinstance(pull_started, str) else None,
            size=self._size,
        )
