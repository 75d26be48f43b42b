"""Following runs that live in an AWS account the platform reaches through credentials of
that account: Tier 2's connected account (ConnectedAccountSessions, here) and Tier 3's
organisation accounts (services/enterprise_launcher.py, EnterpriseRunSessions).

No event reaches the platform from those accounts: reading a run that is not final asks
ECS there (DescribeTasks), and its logs are read from the account's log group. When the
platform can no longer reach the account (disconnected, another account connected, no
session of the reader's), the run stays as last seen, and its logs answer 409
ACCOUNT_NOT_CONNECTED naming the account (lambda_src/CONTRACT.md "Customer runs",
"Enterprise runs").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.errors import AccountNotConnected, DomainError, RoleValidationFailed
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


class RunSessions(Protocol):
    """How a reader reaches the account a run lives in."""

    def session(self, run: dict[str, Any], reader: str, purpose: str) -> CustomerSession | None:
        """Credentials in the run's account and region, or None when the platform cannot
        reach it any more (the stored state is all there is)."""
        ...

    def unreachable(self, run: dict[str, Any]) -> DomainError:
        """What the reader is told when `session` is None and the logs are asked for."""
        ...


class ConnectedAccountSessions:
    """Tier 2: the run owner's connected account (only the owner reads their runs), while
    it is still the run's account."""

    def __init__(self, accounts: AccountsRepository, chain: RoleChain) -> None:
        self._accounts = accounts
        self._chain = chain

    def session(self, run: dict[str, Any], reader: str, purpose: str) -> CustomerSession | None:
        account = self._accounts.get(str(run["userId"]))
        if (
            account is None
            or account.get("status") != CONNECTED
            or account.get("accountId") != run.get("accountId")
        ):
            return None
        return self._chain.assume_connection(
            account, user_id=reader, region=str(run["region"]), purpose=purpose
        )

    def unreachable(self, run: dict[str, Any]) -> DomainError:
        return AccountNotConnected(
            f"this run is in AWS account {run.get('accountId')}, which is no longer "
            "connected: reconnect it to follow the run and read its logs"
        )


class AccountRuns:
    """Reading runs in another AWS account through `sessions` (no events from there)."""

    def __init__(
        self,
        *,
        sessions: RunSessions,
        runs: RunsRepository,
        container_name: str,
        retention_days: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._sessions = sessions
        self._runs = runs
        self._container = container_name
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    def refresh(self, run: dict[str, Any], reader: str) -> dict[str, Any]:
        """The run with its task's current state; as stored if that can't be read."""
        task_arn = run.get("taskArn")
        if run.get("status") in FINAL or not task_arn:
            return run
        try:
            session = self._sessions.session(run, reader, "read")
            if session is None:
                logger.info(
                    "run shown as stored: its account is out of reach",
                    run_id=run["runId"],
                    reason=self._sessions.unreachable(run).message,
                )
                return run
            task = CustomerCluster(session, str(run["clusterArn"])).describe(str(task_arn))
        except Exception as exc:
            # The stored state stays readable; the next read tries again.
            logger.warning(
                "could not refresh a run in its account",
                run_id=run["runId"],
                error=type(exc).__name__,
            )
            return run
        status, fields = self._state(task)
        if self._runs.advance(run["runId"], str(task_arn), status, fields):
            logger.info("run refreshed from its account", run_id=run["runId"], status=status)
        return self._runs.get(run["runId"]) or run

    def _state(self, task: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        now = self._clock()
        if task is None:
            return STOPPED, finished(GONE_REASON, now, self._retention)
        return task_state(task, container_name=self._container, now=now, retention=self._retention)

    def logs(
        self,
        run: dict[str, Any],
        reader: str,
        stream_prefix: str,
        next_token: str | None,
        limit: int,
    ) -> dict[str, Any]:
        task_arn = run.get("taskArn")
        if not task_arn:
            return no_log_lines()
        from botocore.exceptions import ClientError

        try:
            session = self._sessions.session(run, reader, "logs")
            if session is None:
                raise self._sessions.unreachable(run)
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


__all__ = ["GONE_REASON", "AccountRuns", "ConnectedAccountSessions", "RunSessions"]
