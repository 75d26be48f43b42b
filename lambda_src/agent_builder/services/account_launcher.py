"""Deploying a run into an AWS account the platform reaches through credentials of that
account: the mechanics Tier 2 (services/customer_launcher.py: the user's connected
account) and Tier 3 (services/enterprise_launcher.py: an organisation's account, through
its registered role or the member's IAM Identity Center session) share.

The launcher that chose the account hands over an AccountTarget: where the run goes (the
onboarding stack's cluster, network, resource prefix and region) and how to get
credentials there. Then, the same for both: the run and the per-minute launch window in
one transaction (no test is charged), the credentials, a one-off task-definition
revision (the request travels in its environment), RunTask, the revision deregistered
and deleted, the run moved on and the `run.deploy` audit record. A failure after the
run was stored leaves it FAILED with the reason (422 DEPLOY_FAILED naming the step, or
the refusal the credentials step raised). Why, and the exact shapes:
lambda_src/CONTRACT.md "Customer runs" and "Enterprise runs".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import runs as lifecycle
from agent_builder import timeutil
from agent_builder.audit import FAILURE, SUCCESS
from agent_builder.errors import DeployFailed, DomainError
from agent_builder.gateways.customer_account import CustomerCluster, CustomerTask, Network
from agent_builder.gateways.ecs import TaskStartFailed
from agent_builder.gateways.role_chain import CustomerSession
from agent_builder.repositories.dynamo import error_code
from agent_builder.repositories.runs import RunsRepository
from agent_builder.services.launches import LaunchRecords

logger = Logger(child=True)

LOG_STREAM_PREFIX = "runs"
# The step before any ECS call: getting credentials in the account.
CREDENTIALS_STEP = "credentials"


@dataclass(frozen=True)
class AccountTarget:
    """Where a run goes, and how the platform gets credentials there.

    `kind` is the run's target (`customer`, `enterprise`); `prefix` the onboarding stack's
    ResourcePrefix (its roles, cluster and log group are named after it); `session` opens
    the credentials (it may raise a DomainError, which is answered as is, or a botocore
    error, which `refused` explains); `fields` are the run's own extra fields.
    """

    kind: str
    account_id: str
    region: str
    prefix: str
    cluster_arn: str
    network: Network
    session: Callable[[], CustomerSession]
    refused: Callable[[Exception], str]
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_connection(
        cls,
        connection: Mapping[str, Any],
        *,
        kind: str,
        region: str,
        session: Callable[[], CustomerSession],
        refused: Callable[[Exception], str],
        **fields: Any,
    ) -> AccountTarget:
        """A target in a stored connection's account (accounts item, or one account of an
        organisation's: the same fields)."""
        return cls(
            kind=kind,
            account_id=str(connection["accountId"]),
            region=region,
            prefix=str(connection["resourcePrefix"]),
            cluster_arn=str(connection["clusterArn"]),
            network=Network(
                subnet_ids=tuple(connection["subnetIds"]),
                security_group_id=str(connection["securityGroupId"]),
            ),
            session=session,
            refused=refused,
            fields=fields,
        )


def _failed_without_task(existing: dict[str, Any]) -> DomainError | None:
    """A replayed key whose deploy never started a task answers DEPLOY_FAILED again."""
    if existing.get("status") == lifecycle.FAILED and not existing.get("taskArn"):
        return DeployFailed(
            f"{existing.get('stopReason') or 'the run could not start'}; "
            "retry with a new Idempotency-Key"
        )
    return None


class AccountLauncher:
    def __init__(
        self,
        *,
        records: LaunchRecords,
        runs: RunsRepository,
        runner_image_uri: str,
        container_name: str,
        architecture: str,
        cpu: int,
        memory_mib: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._records = records
        self._runs = runs
        self._runner_image = runner_image_uri
        self._container = container_name
        self._architecture = architecture
        self._cpu = cpu
        self._memory = memory_mib
        self._clock = clock

    def launch(self, request: lifecycle.LaunchRequest, target: AccountTarget) -> dict[str, Any]:
        caller, agent, run_id = request.caller, request.agent, request.run_id
        now = self._clock()
        run = lifecycle.new_run(
            request,
            target=target.kind,
            account_id=target.account_id,
            region=target.region,
            now=now,
            retention=self._records.retention,
            clusterArn=target.cluster_arn,
            logGroupName=f"/{target.prefix}/agent-runs",
            **target.fields,
        )
        existing = self._records.ledger.open_uncharged(run, now=now, limits=self._records.limits)
        if existing is not None:
            return lifecycle.replay(existing, request.request_hash, failed=_failed_without_task)

        step = CREDENTIALS_STEP
        try:
            session = target.session()
            cluster = CustomerCluster(session, target.cluster_arn)
            step = "RegisterTaskDefinition"
            revision = cluster.register(
                self._task(run, agent, request.input_text, target.prefix, session), target.prefix
            )
            try:
                step = "RunTask"
                task_arn = cluster.run(
                    revision,
                    run_id=run_id,
                    network=target.network,
                    tags={
                        "Project": target.prefix,
                        "userId": caller.user_id,
                        "agentId": request.agent_id,
                        "runId": run_id,
                        # An organisation's run: organization, team, project, user, agent, run.
                        **lifecycle.cost_allocation_tags(run, agent),
                    },
                )
            finally:
                self._retire(cluster, revision, run_id)
        except Exception as exc:
            if isinstance(exc, DomainError):
                reason = exc.message
            elif step == CREDENTIALS_STEP:
                reason = target.refused(exc)
            else:
                reason = lifecycle.launch_failure_reason(exc)
            self._fail(run, reason, exc)
            if isinstance(exc, DomainError):
                raise
            if isinstance(exc, TaskStartFailed) or error_code(exc) or _transport_failure(exc):
                raise DeployFailed(
                    f"the run could not start in AWS account {target.account_id} "
                    f"({target.region}): {reason}"
                ) from exc
            raise
        self._runs.advance(run_id, task_arn, lifecycle.PENDING, {"taskDefinitionArn": revision})
        self._record(run, SUCCESS, None)
        logger.info(
            "deployed to an account",
            run_id=run_id,
            target=target.kind,
            account_id=target.account_id,
            via=target.fields.get("via"),
        )
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
        and the run's input, which must not outlive the run in the account. A task
        RunTask started keeps running (ECS holds a revision in use until it stops)."""
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
        logger.error(
            "deploy failed",
            run_id=run["runId"],
            target=run["target"],
            reason=reason,
            exc_info=exc,
        )
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
        # An organisation's run is recorded in the organisation's trail too.
        try:
            self._records.audit.record(
                lifecycle.audit_event(
                    run, "run.deploy", result=result, reason=reason, via=run.get("via")
                )
            )
        except Exception:
            logger.exception("could not write the audit record", run_id=run["runId"])


def _transport_failure(exc: Exception) -> bool:
    """AWS did not answer (no connection, a timeout, credentials that could not be read):
    the account's failure to name, not a bug of ours (which stays a logged 500)."""
    from botocore.exceptions import BotoCoreError

    return isinstance(exc, BotoCoreError)


__all__ = ["LOG_STREAM_PREFIX", "AccountLauncher", "AccountTarget"]
