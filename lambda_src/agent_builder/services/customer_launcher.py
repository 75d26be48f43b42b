"""Tier 2: deploying a run into the connected customer account (the tier router's
`customer` target, tier personal).

A customer run costs no test; each registers its own task-definition revision in the
customer's account (the request travels in its environment) and deregisters it right
after RunTask. Why, and the exact shapes: lambda_src/CONTRACT.md "Customer runs".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import FAILURE, SUCCESS, AuditEvent
from agent_builder.errors import AccountNotConnected, DeployFailed, DomainError
from agent_builder.gateways.customer_account import CustomerCluster, CustomerTask, Network
from agent_builder.gateways.ecs import TaskStartFailed
from agent_builder.gateways.role_chain import ACCESS_DENIED, CustomerSession, RoleChain
from agent_builder.repositories.accounts import CONNECTED, AccountsRepository
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.ledger import LaunchLedger, Limits
from agent_builder.repositories.runs import RunsRepository
from agent_builder.runs import (
    FAILED,
    PENDING,
    launch_failed,
    launch_failure_reason,
    new_run,
    replay,
    request_document,
    run_view,
)
from agent_builder.services.caller import Caller

logger = Logger(child=True)

LOG_STREAM_PREFIX = "runs"


def _assume_failure(exc: Exception) -> str:
    if error_code(exc) in ACCESS_DENIED:
        return (
            "the platform could not assume your deployer role: check the onboarding stack "
            "still exists with the same External ID, or reconnect (PUT /aws-account)"
        )
    return launch_failure_reason(exc)


def _failed_without_task(existing: dict[str, Any]) -> DomainError | None:
    """A replayed key whose deploy never started a task answers DEPLOY_FAILED again."""
    if existing.get("status") == FAILED and not existing.get("taskArn"):
        return DeployFailed(
            f"{existing.get('stopReason') or 'the run could not start'}; "
            "retry with a new Idempotency-Key"
        )
    return None


class CustomerLauncher:
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
        run = new_run(
            caller,
            agent,
            run_id=run_id,
            kind=kind,
            target="customer",
            account_id=account["accountId"],
            region=account["region"],
            request_hash=request_hash,
            now=now,
            retention=self._retention,
            clusterArn=account["clusterArn"],
            logGroupName=f"/{prefix}/agent-runs",
        )
        existing = self._ledger.open_uncharged(run, now=now, limits=self._limits)
        if existing is not None:
            return replay(existing, request_hash, failed=_failed_without_task)

        step = "AssumeRole"
        try:
            session = self._chain.assume_connection(
                account, user_id=caller.user_id, region=str(account["region"]), purpose="deploy"
            )
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
        self._record(run, SUCCESS, None)
        logger.info("deployed to customer account", run_id=run_id, account_id=account["accountId"])
        return run_view({**run, "taskArn": task_arn})

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
        try:
            self._runs.fail(run["runId"], launch_failed(reason, self._clock(), self._retention))
        except Exception:
            logger.exception("could not mark the failed deploy", run_id=run["runId"])
        self._record(run, FAILURE, reason)

    def _record(self, run: dict[str, Any], result: str, reason: str | None) -> None:
        # After the fact: a lost audit write must not hide a task that is already running.
        try:
            self._audit.record(
                AuditEvent(
                    actor=str(run["userId"]),
                    action="run.deploy",
                    result=result,
                    account_id=str(run["accountId"]),
                    reason=reason,
                    details={
                        "region": str(run["region"]),
                        "runId": run["runId"],
                        "agentId": run["agentId"],
                    },
                )
            )
        except Exception:
            logger.exception("could not write the audit record", run_id=run["runId"])
