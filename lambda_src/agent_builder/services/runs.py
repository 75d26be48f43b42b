"""Reading runs: GET /runs, GET /runs/{runId}, GET /runs/{runId}/logs.

Repair on read: a run still PENDING with no task several minutes after its launch
never got a task (the launching function died between the charge and RunTask, since
every failure it sees is refunded at once). The runs table has no index by status, so
the sweeper cannot find such runs without scanning the whole table every minute;
instead, whoever reads the run finishes it as FAILED and gives the test back, in the
same guarded transaction a failed launch uses (it happens once, whoever is first),
with the same `launch.failed` audit record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder import pagination, timeutil
from agent_builder.audit import FAILURE
from agent_builder.errors import LaunchFailed, RunNotFound
from agent_builder.gateways.logs import RunLogsGateway
from agent_builder.repositories.ledger import LaunchLedger
from agent_builder.repositories.runs import RunsRepository
from agent_builder.runs import (
    FAILED,
    PENDING,
    audit_event,
    finished,
    log_lines,
    log_stream,
    no_log_lines,
    run_view,
)
from agent_builder.services.caller import Caller
from agent_builder.validation import valid_id

if TYPE_CHECKING:
    from agent_builder.services.customer_runs import AccountRuns

logger = Logger(child=True)

# ECS reports a started task within seconds; three minutes without one means none.
STALE_LAUNCH = timedelta(minutes=3)
NEVER_STARTED_REASON = "agent-builder: the task was never started; the test was given back"


class RunService:
    def __init__(
        self,
        runs: RunsRepository,
        ledger: LaunchLedger,
        logs: RunLogsGateway,
        *,
        log_stream_prefix: str,
        container_name: str,
        retention_days: int,
        remote: Mapping[str, Callable[[], AccountRuns]] | None = None,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._runs = runs
        # By run target (customer, enterprise): the readers of runs in other accounts,
        # built on first use (reading platform runs needs no Tier 2 or 3 settings).
        self._remote = dict(remote or {})
        self._ledger = ledger
        self._logs = logs
        self._stream_prefix = log_stream_prefix
        self._container = container_name
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    def require(self, caller: Caller, run_id: str) -> dict[str, Any]:
        """The caller's run, or a run of their organisation's agents; another user's or
        organisation's run is not found (404, not 403)."""
        item = self._runs.get(run_id) if valid_id(run_id) else None
        if item is None or not self._readable(caller, item):
            raise RunNotFound("no run with this id")
        return self._repair(item)

    @staticmethod
    def _readable(caller: Caller, item: dict[str, Any]) -> bool:
        organization = item.get("organizationId")
        if organization:
            # An organisation's run is every member's, and no longer a former member's.
            return bool(caller.membership().organization_id == organization)
        return bool(item.get("userId") == caller.user_id)

    def get(self, caller: Caller, run_id: str) -> dict[str, Any]:
        run = self.require(caller, run_id)
        remote = self._remote.get(str(run.get("target")))
        if remote is not None:
            run = remote().refresh(run, caller.user_id)
        return run_view(run)

    def list(self, caller: Caller, limit: int, next_token: str | None) -> dict[str, Any]:
        after = pagination.decode(next_token, ("createdAt", "runId")) if next_token else None
        organization = caller.membership().organization_id
        if organization:
            items, cursor = self._runs.list_by_organization(organization, limit, after)
        else:
            items, cursor = self._runs.list_by_user(caller.user_id, limit, after)
        return {
            "runs": [run_view(self._repair(item)) for item in items],
            "nextToken": pagination.encode(cursor) if cursor else None,
        }

    def logs(
        self, caller: Caller, run_id: str, next_token: str | None, limit: int
    ) -> dict[str, Any]:
        run = self.require(caller, run_id)
        remote = self._remote.get(str(run.get("target")))
        if remote is not None:
            return remote().logs(run, caller.user_id, self._stream_prefix, next_token, limit)
        task_arn = run.get("taskArn")
        if not task_arn:
            return no_log_lines()
        stream = log_stream(self._stream_prefix, self._container, task_arn)
        return log_lines(self._logs.page(stream, next_token, limit))

    def _repair(self, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("status") != PENDING or item.get("taskArn") or item.get("target") != "platform":
            return item
        now = self._clock()
        if now - timeutil.parse_iso(item["createdAt"]) < STALE_LAUNCH:
            return item
        fields = finished(NEVER_STARTED_REASON, now, self._retention)
        audit = audit_event(
            item,
            "launch.failed",
            result=FAILURE,
            reason=NEVER_STARTED_REASON,
            code=LaunchFailed.code,
        )
        if self._ledger.finish_and_refund(
            item, status=FAILED, fields=fields, require_no_task=True, audit=audit
        ):
            logger.warning("run never got a task; refunded", run_id=item["runId"])
            return {**item, **fields, "status": FAILED, "refunded": True}
        return self._runs.get(item["runId"]) or item
