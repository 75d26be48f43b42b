"""Tier 2: deploying a run into the connected customer account (the tier router's
`customer` target, tier personal).

A customer run costs no test; each registers its own task-definition revision in the
customer's account (the request travels in its environment), and deregisters and deletes
it right after RunTask. Why, and the exact shapes: lambda_src/CONTRACT.md "Customer runs".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import runs as lifecycle
from agent_builder import timeutil
from agent_builder.audit import FAILURE, SUCCESS, AuditEvent
from agent_builder.errors import AccountNotConnected, DeployFailed, DomainError
from agent_builder.gateways.customer_account import CustomerCluster, CustomerTask, Network
from agent_builder.gateways.ecs import TaskStartFailed
from agent_builder.gateways.role_chain import ACCESS_DENIED, CustomerSession, RoleChain
from agent_builder.repositories.accounts import CONNECTED, AccountsRepository
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.runs import RunsRepository
from agent_builder.services.launches import LaunchRecords

logger = Logger(child=True)

LOG_STREAM_PREFIX = "runs"


def _assume_failure(exc: Exception) -> str:
    if error_code(exc) in ACCESS_DENIED:
        return (
            "the platform could not assume your deployer role: check the onboarding stack "
            "still exists with the same External ID, or reconnect (PUT /aws-account)"
        )
    return lifecycle.launch_failure_reason(exc)


def _failed_without_task(existing: dict[str, Any]) -> DomainError | None:
    """A replayed key whose deploy never started a task answers DEPLOY_FAILED again."""
    if existing.get("status") == lifecycle.FAILED and not existing.get("taskArn"):
        return DeployFailed(
            f"{existing.get('stopReason') or 'the run could not start'}; "
            "retry with a new Idempotency-Key"
        )
    return None


class CustomerLauncher:
    def __init__(
        self,
        *,
        records: LaunchRecords,
        accounts: AccountsRepository,
        chain: RoleChain,
        runs: RunsRepository,
        runner_image_uri: str,
        container_name: str,
        architecture: str,
        cpu: int,
        memory_mib: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._records = records
        self._accounts = accounts
        self._chain = chain
        self._runs = runs
        self._runner_image = runner_image_uri
        self._container = container_name
        self._architecture = architecture
        self._cpu = cpu
        self._memory = memory_mib
        self._clock = clock

    def launch(self, request: lifecycle.LaunchRequest) -> dict[str, Any]:
        caller, agent, run_id = request.caller, request.agent, request.run_id
        account = self._accounts.get(caller.user_id)
        if account is None or account.get("status") != CONNECTED:
            raise AccountNotConnected(
                "deployments go to your own AWS account, which is not connected: connect it "
                "first (POST /aws-account/onboarding)"
            )
        now = self._clock()
        prefix = str(account["resourcePrefix"])
        run = lifecycle.new_run(
            request,
            target="customer",
            account_id=account["accountId"],
            region=account["region"],
            now=now,
            retention=self._records.retention,
            clusterArn=account["clusterArn"],
            logGroupName=f"/{prefix}/agent-runs",
        )
        existing = self._records.ledger.open_uncharged(run, now=now, limits=self._records.limits)
        if existing is not None:
            return lifecycle.replay(existing, request.request_hash, failed=_failed_without_task)

        step = "AssumeRole"
        try:
            session = self._chain.assume_connection(
                account, user_id=caller.user_id, region=str(account["region"]), purpose="deploy"
            )
            cluster = CustomerCluster(session, str(account["clusterArn"]))
            step = "RegisterTaskDefinition"
            revision = cluster.register(
                self._task(run, agent, request.input_text, prefix, session), prefix
            )
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
                self._retire(cluster, revision, run_id)
        except Exception as exc:
            reason = (
                _assume_failure(exc)
                if step == "AssumeRole"
                else lifecycle.launch_failure_reason(exc)
            )
            self._fail(run, reason, exc)
            if isinstance(exc, TaskStartFailed) or error_code(exc):
                raise DeployFailed(
                    f"the run could not start in AWS account {account['accountId']} "
                    f"({account['region']}): {reason}"
                ) from exc
            raise
        self._runs.advance(run_id, task_arn, lifecycle.PENDING, {"taskDefinitionArn": revision})
        self._record(run, SUCCESS, None)
        logger.info("deployed to customer account", run_id=run_id, account_id=account["accountId"])
        return lifecycle.run_view({**run, "taskArn": task_arn})

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
        document = lifecycle.request_document(
            run["runId"], agent, input_text, self._records.max_output_tokens
        )
        return CustomerTask(
            family=f"{prefix}-agent-runner",
            image=str(own_image or self._runner_image),
            environment={
                "RUN_ID": run["runId"],
                "AGENT_REQUEST": json.dumps(document, ensure_ascii=False, separators=(",", ":")),
                "AWS_REGION": session.region,
                "MAX_OUTPUT_TOKENS": str(self._records.max_output_tokens),
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

    def _retire(self, cluster: CustomerCluster, revision: str, run_id: str) -> None:
        """Deregister, then delete, the run's revision: it holds the agent's instructions
        and the run's input, which must not outlive the run in the customer's account. A
        task RunTask started keeps running (ECS holds a revision in use until it stops)."""
        try:
            cluster.deregister(revision)
        except Exception:
            logger.warning("could not deregister the run's task definition", run_id=run_id)
            return
        try:
            cluster.delete(revision)
        except Exception:
            logger.warning("could not delete the run's task definition", run_id=run_id)

    def _fail(self, run: dict[str, Any], reason: str, exc: Exception) -> None:
        logger.error("customer deploy failed", run_id=run["runId"], reason=reason, exc_info=exc)
        try:
            self._runs.fail(
                run["runId"],
                lifecycle.launch_failed(reason, self._clock(), self._records.retention),
            )
        except Exception:
            logger.exception("could not mark the failed deploy", run_id=run["runId"])
        self._record(run, FAILURE, reason)

    def _record(self, run: dict[str, Any], result: str, reason: str | None) -> None:
        # After the fact: a lost audit write must not hide a task that is already running.
        try:
            self._records.audit.record(
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
