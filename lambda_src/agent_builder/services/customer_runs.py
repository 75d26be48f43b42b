"""Tier 2: following runs in the connected customer account, through the assumed role.

No event reaches the platform from a customer's account: reading a run that is not
final asks ECS there (DescribeTasks), and its logs are read from the customer's log
group. After a disconnect (or with another account connected) the run stays as last
seen, and its logs answer 409 ACCOUNT_NOT_CONNECTED (lambda_src/CONTRACT.md "Customer
runs").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.errors import AccountNotConnected, RoleValidationFailed
from agent_builder.gateways.customer_account import CustomerCluster
from agent_builder.gateways.logs import RunLogsGateway
from agent_builder.gateways.role_chain import ACCESS_DENIED, CustomerSession, RoleChain
from agent_builder.repositories.accounts import CONNECTED, AccountsRepository
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.runs import RunsRepository
from agent_builder.runs import (
    FINAL,
    STOPPED,
    finished,
    log_lines,
    log_stream,
    no_log_lines,
    task_state,
)

logger = Logger(child=True)

GONE_REASON = "agent-builder: ECS no longer knows the task (it stopped over an hour ago)"


def _not_connected(account_id: str | None) -> AccountNotConnected:
    return AccountNotConnected(
        f"this run is in AWS account {account_id}, which is no longer connected: "
        "reconnect it to follow the run and read its logs"
    )


class CustomerRuns:
    """Reading customer runs through the assumed role (no events from their account)."""

    def __init__(
        self,
        *,
        accounts: AccountsRepository,
        chain: RoleChain,
        runs: RunsRepository,
        container_name: str,
        retention_days: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._accounts = accounts
        self._chain = chain
        self._runs = runs
        self._container = container_name
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    def _session_for(self, run: dict[str, Any], purpose: str) -> CustomerSession | None:
        account = self._accounts.get(str(run["userId"]))
        if (
            account is None
            or account.get("status") != CONNECTED
            or account.get("accountId") != run.get("accountId")
        ):
            return None
        return self._chain.assume_connection(
            account, user_id=str(run["userId"]), region=str(run["region"]), purpose=purpose
        )

    def refresh(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run with its task's current state; as stored if that can't be read."""
        task_arn = run.get("taskArn")
        if run.get("status") in FINAL or not task_arn:
            return run
        try:
            session = self._session_for(run, "read")
            if session is None:
                return run
            task = CustomerCluster(session, str(run["clusterArn"])).describe(str(task_arn))
        except Exception as exc:
            # The stored state stays readable; the next read tries again.
            logger.warning(
                "could not refresh a customer run", run_id=run["runId"], error=type(exc).__name__
            )
            return run
        status, fields = self._state(task)
        if self._runs.advance(run["runId"], str(task_arn), status, fields):
            logger.info("customer run refreshed", run_id=run["runId"], status=status)
        return self._runs.get(run["runId"]) or run

    def _state(self, task: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        now = self._clock()
        if task is None:
            return STOPPED, finished(GONE_REASON, now, self._retention)
        return task_state(task, container_name=self._container, now=now, retention=self._retention)

    def logs(
        self, run: dict[str, Any], stream_prefix: str, next_token: str | None, limit: int
    ) -> dict[str, Any]:
        task_arn = run.get("taskArn")
        if not task_arn:
            return no_log_lines()
        from botocore.exceptions import ClientError

        try:
            session = self._session_for(run, "logs")
            if session is None:
                raise _not_connected(run.get("accountId"))
            gateway = RunLogsGateway(session.client("logs"), group_name=str(run["logGroupName"]))
            page = gateway.page(
                log_stream(stream_prefix, self._container, str(task_arn)), next_token, limit
            )
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED:
                raise RoleValidationFailed(
                    "logs",
                    f"the role may not read {run['logGroupName']} in account {run['accountId']}: "
                    "update the onboarding stack to the current template",
                ) from None
            raise
        return log_lines(page)
