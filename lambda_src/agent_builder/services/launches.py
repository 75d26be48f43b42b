"""Launching a run: tests always on the platform cluster, deployments by tier.

A test costs one of the month's tests. The charge (run record, counter, rate window,
profile) is one DynamoDB transaction; then the request document is written, the task
started and its time limit scheduled. If any of those fails, the run is marked FAILED
and the test given back in one transaction, and the caller gets LAUNCH_FAILED.

Decisions (see lambda_src/CONTRACT.md "Launch"):
- The monthly allowance counts every run on the platform cluster, whatever the tier:
  the platform owner pays for those. A freemium deployment IS a test (same counter).
- The same Idempotency-Key with the same body returns the same run and is not counted
  again, whatever its state; with a different body it is refused (409). A launch that
  failed answers LAUNCH_FAILED again for its key: retry with a new key.
- Audit: the charge transaction carries the `test.launch` / `deployment.launch` record
  (no extra call; it exists exactly when the test was charged, and a replay writes
  none). A refusal by a limit writes one `launch.refused` record (PutItem); a launch
  that fails after the charge adds `launch.failed` to its refund transaction, so its
  trail reads charged, then failed and given back.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.errors import (
    AccountNotConnected,
    IdempotencyKeyReused,
    InvalidInput,
    LaunchConflict,
    LaunchFailed,
    QuotaExceeded,
    RateLimited,
    UnknownTier,
)
from agent_builder.gateways.artifacts import ArtifactsGateway, request_key, result_key
from agent_builder.gateways.ecs import ClusterGateway, TaskSpec, TaskStartFailed
from agent_builder.gateways.scheduler import TimeLimitScheduler
from agent_builder.repositories.audit import FAILURE, REFUSED, SUCCESS, AuditLog
from agent_builder.repositories.ledger import LaunchLedger, Limits, tests_period
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.repositories.runs import FAILED, PENDING, STATUS_RANK
from agent_builder.services.agents import AgentService
from agent_builder.services.caller import Caller

logger = Logger(child=True)

MAX_INPUT_BYTES = 8 * 1024
# A deployment may come without input; the runner needs some, so it gets this prompt.
DEFAULT_DEPLOY_INPUT = "Start."
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# runId = uuid5(namespace, userId + key): the same key from two users gives two runs.
RUN_ID_NAMESPACE = uuid.UUID("8f0c6b9e-4a34-5c1d-9b5e-2f3a7d6c1e40")
LAUNCH_FAILED_MESSAGE = "the run could not be started and the test was given back"

# Which target serves a tier's deployments.
TIER_TARGETS = {"freemium": "platform", "personal": "customer", "enterprise": "enterprise"}


class Launcher(Protocol):
    """Starts a run on one target. Tier 2 ("customer") and Tier 3 ("enterprise")
    launchers plug in here when their issues land."""

    def launch(
        self,
        caller: Caller,
        agent: dict[str, Any],
        *,
        kind: str,
        input_text: str,
        run_id: str,
        request_hash: str,
    ) -> dict[str, Any]: ...


def run_view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "runId": item["runId"],
        "agentId": item.get("agentId"),
        "kind": item.get("kind"),
        "target": item.get("target"),
        "status": item.get("status"),
        "accountId": item.get("accountId"),
        "region": item.get("region"),
        "createdAt": item.get("createdAt"),
        "startedAt": item.get("startedAt"),
        "stoppedAt": item.get("stoppedAt"),
        "exitCode": item.get("exitCode"),
        "stopReason": item.get("stopReason"),
    }


def run_audit_fields(run: dict[str, Any]) -> dict[str, Any]:
    """What an audit record says about a run: where it runs and what it is (no input)."""
    return {
        "account_id": run.get("accountId") or None,
        "region": run.get("region") or None,
        "runId": run["runId"],
        "agentId": run.get("agentId"),
        "kind": run.get("kind"),
        "target": run.get("target"),
    }


def arn_account_region(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    return (parts[4], parts[3]) if len(parts) > 5 else ("", "")


class PlatformLauncher:
    """Runs on the platform's own test cluster: quota-charged, time-limited."""

    def __init__(
        self,
        *,
        ledger: LaunchLedger,
        artifacts: ArtifactsGateway,
        cluster: ClusterGateway,
        scheduler: TimeLimitScheduler,
        audit: AuditLog,
        limits: Limits,
        max_test_minutes: int,
        max_output_tokens: int,
        retention_days: int,
        project: str,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._ledger = ledger
        self._artifacts = artifacts
        self._cluster = cluster
        self._scheduler = scheduler
        self._audit = audit
        self._limits = limits
        self._minutes = max_test_minutes
        self._max_tokens = max_output_tokens
        self._retention = timedelta(days=retention_days)
        self._project = project
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
        now = self._clock()
        account, region = arn_account_region(self._cluster.cluster_arn)
        run = {
            "runId": run_id,
            "userId": caller.user_id,
            "agentId": agent["agentId"],
            "kind": kind,
            "target": "platform",
            "accountId": account,
            "region": region,
            "status": PENDING,
            "statusRank": STATUS_RANK[PENDING],
            "createdAt": timeutil.iso(now),
            "period": tests_period(now),
            "requestHash": request_hash,
            # Provisional: a run that never finishes still expires; STOPPED resets it.
            "expiresAt": timeutil.epoch(now + self._retention + timedelta(days=1)),
        }
        charged = self._audit.put_request(
            caller.user_id, f"{kind}.launch", result=SUCCESS, **run_audit_fields(run)
        )
        try:
            existing = self._ledger.charge(
                run, email=caller.email, now=now, limits=self._limits, audit=charged
            )
        except (QuotaExceeded, RateLimited, LaunchConflict) as refusal:
            self._record_refusal(run, refusal)
            raise
        if existing is not None:
            return self._replay(existing, request_hash)
        logger.info("test charged", run_id=run_id, agent_id=agent["agentId"], kind=kind)

        task_arn: str | None = None
        try:
            self._artifacts.put_request(run_id, self._request_document(run_id, agent, input_text))
            task_arn = self._cluster.run(
                TaskSpec(
                    run_id=run_id,
                    environment={
                        "RUN_ID": run_id,
                        "ARTIFACTS_BUCKET": self._artifacts.bucket,
                        "REQUEST_KEY": request_key(run_id),
                        "RESULT_KEY": result_key(run_id),
                    },
                    tags={
                        "Project": self._project,
                        "userId": caller.user_id,
                        "agentId": agent["agentId"],
                        "runId": run_id,
                    },
                )
            )
            self._scheduler.schedule_stop(
                run_id, task_arn, now + timedelta(minutes=self._minutes), self._minutes
            )
        except Exception as exc:
            self._give_back(run, task_arn, exc)
            raise LaunchFailed(LAUNCH_FAILED_MESSAGE) from exc
        logger.info("test launched", run_id=run_id, task_arn=task_arn)
        return run_view(run)

    def _request_document(
        self, run_id: str, agent: dict[str, Any], input_text: str
    ) -> dict[str, Any]:
        return request_document(run_id, agent, input_text, self._max_tokens)

    def _record_refusal(
        self, run: dict[str, Any], refusal: QuotaExceeded | RateLimited | LaunchConflict
    ) -> None:
        # No run was stored, so the record names the agent, not the runId. A lost write
        # is logged, not raised: the caller still gets the refusal, not a 500.
        fields = run_audit_fields(run)
        del fields["runId"]
        try:
            self._audit.record(
                run["userId"],
                "launch.refused",
                result=REFUSED,
                code=refusal.code,
                reason=refusal.message,
                **fields,
            )
        except Exception:
            logger.exception("could not write the audit record of a refused launch")

    def _give_back(self, run: dict[str, Any], task_arn: str | None, exc: Exception) -> None:
        reason = launch_failure_reason(exc)
        logger.error("launch failed", run_id=run["runId"], reason=reason, exc_info=exc)
        if task_arn:
            # The task started but has no time limit: stop it now rather than let it run
            # unpaid-for until the sweeper finds it.
            try:
                self._cluster.stop(task_arn, f"agent-builder: launch failed ({reason})")
            except Exception:
                logger.exception("could not stop the task of a failed launch", run_id=run["runId"])
        stopped = self._clock()
        try:
            self._ledger.finish_and_refund(
                run,
                status=FAILED,
                fields={
                    "stopReason": f"agent-builder: launch failed: {reason}",
                    "stoppedAt": timeutil.iso(stopped),
                    "expiresAt": timeutil.epoch(stopped + self._retention),
                },
                audit=self._audit.put_request(
                    run["userId"],
                    "launch.failed",
                    result=FAILURE,
                    code=LaunchFailed.code,
                    reason=reason,
                    **run_audit_fields(run),
                ),
            )
        except Exception:
            # The run stays PENDING without a task; reading it later repairs it (runs.py).
            logger.exception("could not refund a failed launch", run_id=run["runId"])

    def _replay(self, existing: dict[str, Any], request_hash: str) -> dict[str, Any]:
        if existing.get("requestHash") != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        logger.info("idempotent replay", run_id=existing["runId"], status=existing.get("status"))
        if existing.get("status") == FAILED and existing.get("refunded"):
            raise LaunchFailed(f"{LAUNCH_FAILED_MESSAGE}; retry with a new Idempotency-Key")
        return run_view(existing)


def request_document(
    run_id: str, agent: dict[str, Any], input_text: str, max_tokens: int
) -> dict[str, Any]:
    """What the agent runner reads (CONTRACT.md "Agent runner": request.json)."""
    parameters = dict(agent.get("parameters") or {})
    parameters["maxTokens"] = min(int(parameters.get("maxTokens") or max_tokens), max_tokens)
    return {
        "runId": run_id,
        "agent": {
            "name": agent["name"],
            "model": agent["model"],
            "instructions": agent["instructions"],
            "parameters": parameters,
        },
        "input": input_text,
    }


def launch_failure_reason(exc: Exception) -> str:
    if isinstance(exc, TaskStartFailed):
        return f"ECS started no task: {exc}"[:200]
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        operation = getattr(exc, "operation_name", "AWS call")
        return f"{operation} failed with {error.get('Code', 'an error')}"[:200]
    return f"{type(exc).__name__}"


class LaunchService:
    def __init__(
        self,
        agents: AgentService,
        profiles: ProfilesRepository,
        launchers: dict[str, Launcher],
    ) -> None:
        self._agents = agents
        self._profiles = profiles
        self._launchers = launchers

    def test(
        self, caller: Caller, agent_id: str, input_text: str, idempotency_key: str | None
    ) -> dict[str, Any]:
        _check_request(input_text, idempotency_key)
        agent = self._agents.require(caller, agent_id)
        return self._launch(caller, agent, "test", "platform", input_text, idempotency_key)

    def deploy(
        self, caller: Caller, agent_id: str, input_text: str | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        text = DEFAULT_DEPLOY_INPUT if input_text is None else input_text
        _check_request(text, idempotency_key)
        agent = self._agents.require(caller, agent_id)
        profile = self._profiles.get(caller.user_id) or {}
        tier = profile.get("tier", "freemium")
        target = TIER_TARGETS.get(tier)
        if target is None:
            logger.error("profile has an unknown tier", tier=tier)
            raise UnknownTier(f"your account has an unknown tier ({tier!r}); contact support")
        if target not in self._launchers:
            if tier == "personal":
                raise AccountNotConnected(
                    "deployments go to your own AWS account, which is not connected yet: "
                    "connect it first (POST /aws-account/onboarding)"
                )
            raise AccountNotConnected(
                "deployments go to your organisation's AWS account, which is not configured yet"
            )
        return self._launch(caller, agent, "deployment", target, text, idempotency_key)

    def _launch(
        self,
        caller: Caller,
        agent: dict[str, Any],
        kind: str,
        target: str,
        input_text: str,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        run_id = (
            str(uuid.uuid5(RUN_ID_NAMESPACE, f"{caller.user_id}\n{idempotency_key}"))
            if idempotency_key
            else str(uuid.uuid4())
        )
        request_hash = hashlib.sha256(
            json.dumps(
                {"agentId": agent["agentId"], "kind": kind, "input": input_text}, sort_keys=True
            ).encode()
        ).hexdigest()
        return self._launchers[target].launch(
            caller,
            agent,
            kind=kind,
            input_text=input_text,
            run_id=run_id,
            request_hash=request_hash,
        )


def _check_request(input_text: str, idempotency_key: str | None) -> None:
    if not input_text.strip():
        raise InvalidInput("input must not be blank")
    if len(input_text.encode("utf-8")) > MAX_INPUT_BYTES:
        raise InvalidInput(f"input must be at most {MAX_INPUT_BYTES} bytes (UTF-8)")
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInput(
            "Idempotency-Key must be 1-128 characters of letters, digits, '.', '_', ':' or '-'"
        )
