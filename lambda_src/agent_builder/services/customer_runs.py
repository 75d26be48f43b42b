"""Tier 2 runs: deploying into the connected customer account, and following them there.

Decisions (lambda_src/CONTRACT.md "Customer runs"):
- A customer run costs no test: the run record and the per-minute launch window are one
  transaction (no monthly counter); the runId from the Idempotency-Key still makes a
  retry return the same run.
- Each run registers its own revision of `<prefix>-agent-runner` in the customer's
  account, carrying the request in the container's environment (AGENT_REQUEST): there
  is no platform bucket there, and RunTask overrides are capped at 8192 characters,
  which 16 KiB of instructions would exceed. The revision is deregistered right after
  RunTask (whether it started a task or not): ECS keeps running a task whose revision
  is INACTIVE, and the platform hears nothing from the customer's account that would
  tell it when the task stops, so this is the one moment it can tidy up.
- No time limit: the customer pays for their own tasks.
- State: GET /runs/{id} refreshes a non-final customer run with DescribeTasks through
  the assumed role. Logs are read from the customer's log group the same way. After a
  disconnect (or with another account connected) the run is frozen as last seen, and
  its logs answer 409 ACCOUNT_NOT_CONNECTED, which says where they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.errors import (
    AccountNotConnected,
    DeployFailed,
    IdempotencyKeyReused,
    RoleValidationFailed,
)
from agent_builder.gateways.customer_account import CustomerCluster, CustomerTask, Network
from agent_builder.gateways.ecs import TaskStartFailed, task_id
from agent_builder.gateways.logs import RunLogsGateway
from agent_builder.gateways.role_chain import CustomerSession, RoleChain
from agent_builder.repositories.accounts import CONNECTED, AccountsRepository
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.ledger import LaunchLedger, Limits
from agent_builder.repositories.runs import (
    FAILED,
    PENDING,
    STATUS_RANK,
    STOPPED,
    TERMINAL_RANK,
    RunsRepository,
)
from agent_builder.services.caller import Caller
from agent_builder.services.launches import launch_failure_reason, request_document, run_view
from agent_builder.services.task_events import exit_code, iso_or_none, task_status

logger = Logger(child=True)

LOG_STREAM_PREFIX = "runs"
DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
GONE_REASON = "agent-builder: ECS no longer knows the task (it stopped over an hour ago)"


def _not_connected(account_id: str | None) -> AccountNotConnected:
    return AccountNotConnected(
        f"this run is in AWS account {account_id}, which is no longer connected: "
        "reconnect it to follow the run and read its logs"
    )


def _assume_failure(exc: Exception) -> str:
    if error_code(exc) in DENIED:
        return (
            "the platform could not assume your deployer role: check the onboarding stack "
            "still exists with the same External ID, or reconnect (PUT /aws-account)"
        )
    return launch_failure_reason(exc)


class CustomerLauncher:
    """The tier router's `customer` target (tier personal)."""

    def __init__(
        self,
        *,
        accounts: AccountsRepository,
        chain: RoleChain,
        ledger: LaunchLedger,
        runs: RunsRepository,
        audit: AuditLog,
        limits: Limits,
        retention_days: int,
        max_output_tokens: int,
        runner_image_uri: str,
        container_name: str,
        architecture: str,
        cpu: int,
        memory_mib: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._accounts = accounts
        self._chain = chain
        self._ledger = ledger
        self._runs = runs
        self._audit = audit
        self._limits = limits
        self._retention = timedelta(days=retention_days)
        self._max_tokens = max_output_tokens
        self._runner_image = runner_image_uri
        self._container = container_name
        self._architecture = architecture
        self._cpu = cpu
        self._memory = memory_mib
        self._clock = clock

    def launch(
        self,
        caller: Caller,
        agent: dict[str, Any],
        *,
        kind: str,
        input_text: str,
        run_id: str,
        request_hash: str,
    ) -> dict[str, Any]:
        account = self._accounts.get(caller.user_id)
        if account is None or account.get("status") != CONNECTED:
            raise AccountNotConnected(
                "deployments go to your own AWS account, which is not connected: connect it "
                "first (POST /aws-account/onboarding)"
            )
        now = self._clock()
        prefix = str(account["resourcePrefix"])
        run = {
            "runId": run_id,
            "userId": caller.user_id,
            "agentId": agent["agentId"],
            "kind": kind,
            "target": "customer",
            "accountId": account["accountId"],
            "region": account["region"],
            "clusterArn": account["clusterArn"],
            "logGroupName": f"/{prefix}/agent-runs",
            "status": PENDING,
            "statusRank": STATUS_RANK[PENDING],
            "createdAt": timeutil.iso(now),
            "requestHash": request_hash,
            "expiresAt": timeutil.epoch(now + self._retention + timedelta(days=1)),
        }
        existing = self._ledger.open_uncharged(run, now=now, limits=self._limits)
        if existing is not None:
            return self._replay(existing, request_hash)

        step = "AssumeRole"
        try:
            session = self._session(account, caller.user_id, "deploy")
            cluster = CustomerCluster(session, str(account["clusterArn"]))
            step = "RegisterTaskDefinition"
            revision = cluster.register(self._task(run, agent, input_text, prefix, session), prefix)
            try:
                step = "RunTask"
                task_arn = cluster.run(
                    revision,
                    run_id=run_id,
                    network=Network(
                        subnet_ids=tuple(account["subnetIds"]),
                        security_group_id=str(account["securityGroupId"]),
                    ),
                    tags={
                        "Project": prefix,
                        "userId": caller.user_id,
                        "agentId": agent["agentId"],
                        "runId": run_id,
                    },
                )
            finally:
                self._deregister(cluster, revision, run_id)
        except Exception as exc:
            reason = _assume_failure(exc) if step == "AssumeRole" else launch_failure_reason(exc)
            self._fail(run, reason, exc)
            if isinstance(exc, TaskStartFailed) or error_code(exc):
                raise DeployFailed(
                    f"the run could not start in AWS account {account['accountId']} "
                    f"({account['region']}): {reason}"
                ) from exc
            raise
        self._runs.advance(run_id, task_arn, PENDING, {"taskDefinitionArn": revision})
        self._record(caller.user_id, run, "success", None)
        logger.info("deployed to customer account", run_id=run_id, account_id=account["accountId"])
        return run_view({**run, "taskArn": task_arn})

    def _session(self, account: dict[str, Any], user_id: str, purpose: str) -> CustomerSession:
        return self._chain.assume(
            role_arn=str(account["roleArn"]),
            external_id=str(account["externalId"]),
            region=str(account["region"]),
            user_id=user_id,
            purpose=purpose,
        )

    def _task(
        self,
        run: dict[str, Any],
        agent: dict[str, Any],
        input_text: str,
        prefix: str,
        session: CustomerSession,
    ) -> CustomerTask:
        account = run["accountId"]
        own_image = agent.get("image")
        document = request_document(run["runId"], agent, input_text, self._max_tokens)
        return CustomerTask(
            family=f"{prefix}-agent-runner",
            image=str(own_image or self._runner_image),
            environment={
                "RUN_ID": run["runId"],
                "AGENT_REQUEST": json.dumps(document, ensure_ascii=False, separators=(",", ":")),
                "AWS_REGION": session.region,
                "MAX_OUTPUT_TOKENS": str(self._max_tokens),
            },
            execution_role_arn=f"arn:aws:iam::{account}:role/{prefix}-task-execution",
            task_role_arn=f"arn:aws:iam::{account}:role/{prefix}-agent-task",
            log_group=run["logGroupName"],
            log_stream_prefix=LOG_STREAM_PREFIX,
            container_name=self._container,
            cpu=self._cpu,
            memory_mib=self._memory,
            # The platform's runner image is built for the platform's architecture; an
            # agent's own image is assumed to be the Fargate default.
            architecture="X86_64" if own_image else self._architecture,
            tags={"Project": prefix},
        )

    def _deregister(self, cluster: CustomerCluster, revision: str, run_id: str) -> None:
        try:
            cluster.deregister(revision)
        except Exception:
            logger.warning("could not deregister the run's task definition", run_id=run_id)

    def _fail(self, run: dict[str, Any], reason: str, exc: Exception) -> None:
        logger.error("customer deploy failed", run_id=run["runId"], reason=reason, exc_info=exc)
        stopped = self._clock()
        try:
            self._runs.fail(
                run["runId"],
                {
                    "stopReason": f"agent-builder: launch failed: {reason}"[:1024],
                    "stoppedAt": timeutil.iso(stopped),
                    "expiresAt": timeutil.epoch(stopped + self._retention),
                },
            )
        except Exception:
            logger.exception("could not mark the failed deploy", run_id=run["runId"])
        self._record(run["userId"], run, "failure", reason)

    def _record(self, user_id: str, run: dict[str, Any], result: str, reason: str | None) -> None:
        # After the fact: a lost audit write must not hide a task that is already running.
        try:
            self._audit.record(
                user_id,
                "run.deploy",
                result=result,
                account_id=str(run["accountId"]),
                reason=reason,
                region=str(run["region"]),
                runId=run["runId"],
                agentId=run["agentId"],
            )
        except Exception:
            logger.exception("could not write the audit record", run_id=run["runId"])

    def _replay(self, existing: dict[str, Any], request_hash: str) -> dict[str, Any]:
        if existing.get("requestHash") != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        if existing.get("status") == FAILED and not existing.get("taskArn"):
            raise DeployFailed(
                f"{existing.get('stopReason') or 'the run could not start'}; "
                "retry with a new Idempotency-Key"
            )
        return run_view(existing)


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
        return self._chain.assume(
            role_arn=str(account["roleArn"]),
            external_id=str(account["externalId"]),
            region=str(run["region"]),
            user_id=str(run["userId"]),
            purpose=purpose,
        )

    def refresh(self, run: dict[str, Any]) -> dict[str, Any]:
        """The run with its task's current state; as stored if that can't be read."""
        task_arn = run.get("taskArn")
        if int(run.get("statusRank", 0)) >= TERMINAL_RANK or not task_arn:
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
            return STOPPED, {
                "stopReason": GONE_REASON,
                "stoppedAt": timeutil.iso(now),
                "expiresAt": timeutil.epoch(now + self._retention),
            }
        detail = {
            key: timeutil.iso(value) if isinstance(value, datetime) else value
            for key, value in task.items()
        }
        status = task_status(detail)
        fields: dict[str, Any] = {"lastStatus": detail.get("lastStatus")}
        started = iso_or_none(detail.get("startedAt"))
        if started:
            fields["startedAt"] = started
        if status == STOPPED:
            stopped_at = iso_or_none(detail.get("stoppedAt")) or timeutil.iso(now)
            fields.update(
                stoppedAt=stopped_at,
                stopReason=str(detail.get("stoppedReason") or detail.get("stopCode") or "stopped")[
                    :1024
                ],
                stopCode=detail.get("stopCode"),
                exitCode=exit_code(detail, self._container),
                expiresAt=timeutil.epoch(timeutil.parse_iso(stopped_at) + self._retention),
            )
        return status, fields

    def logs(
        self, run: dict[str, Any], stream_prefix: str, next_token: str | None, limit: int
    ) -> dict[str, Any]:
        task_arn = run.get("taskArn")
        if not task_arn:
            return {"lines": [], "nextToken": None}
        from botocore.exceptions import ClientError

        try:
            session = self._session_for(run, "logs")
            if session is None:
                raise _not_connected(run.get("accountId"))
            gateway = RunLogsGateway(session.client("logs"), group_name=str(run["logGroupName"]))
            page = gateway.page(
                f"{stream_prefix}/{self._container}/{task_id(str(task_arn))}", next_token, limit
            )
        except ClientError as exc:
            if error_code(exc) in DENIED:
                raise RoleValidationFailed(
                    "logs",
                    f"the role may not read {run['logGroupName']} in account {run['accountId']}: "
                    "update the onboarding stack to the current template",
                ) from None
            raise
        return {
            "lines": [
                {
                    "timestamp": timeutil.iso(datetime.fromtimestamp(ms / 1000, tz=UTC)),
                    "message": text,
                }
                for ms, text in page.events
            ],
            "nextToken": page.next_token,
        }
