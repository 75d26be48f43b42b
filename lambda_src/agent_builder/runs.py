"""What a run is, written once for every launcher and reader (CONTRACT.md "Runs").

Its states, how a new one is built and identified, how a replayed launch answers, what
the API shows of it, how an ECS task's details move it forward, how a failure or a stop
is recorded on it, and how its log lines are paged. The platform launcher
(services/launches.py), the customer launcher (services/customer_launcher.py), the
readers (services/runs.py, services/customer_runs.py) and the task-event handler
(services/task_events.py) all use these; the storage shape (status ranks, conditions,
transactions) is the repositories'.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import SUCCESS, AuditEvent
from agent_builder.errors import DomainError, IdempotencyKeyReused
from agent_builder.gateways.ecs import TaskStartFailed, task_id

if TYPE_CHECKING:
    from agent_builder.gateways.logs import LogPage
    from agent_builder.services.caller import Caller

logger = Logger(child=True)

PENDING, RUNNING, STOPPED, FAILED = "PENDING", "RUNNING", "STOPPED", "FAILED"
# Nothing moves a run out of these.
FINAL = frozenset({STOPPED, FAILED})
MAX_STOP_REASON = 1024
# runId = uuid5(namespace, userId + key): the same key from two users gives two runs.
RUN_ID_NAMESPACE = uuid.UUID("8f0c6b9e-4a34-5c1d-9b5e-2f3a7d6c1e40")

# ---- a new run ------------------------------------------------------------------------------


def run_id_for(user_id: str, idempotency_key: str | None) -> str:
    """Derived from the Idempotency-Key, so a retry finds its run; random without one."""
    if idempotency_key:
        return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{user_id}\n{idempotency_key}"))
    return str(uuid.uuid4())


def hash_request(
    agent_id: str,
    kind: str,
    input_text: str,
    *,
    account_id: str | None = None,
    region: str | None = None,
) -> str:
    """What a replay must match: the same agent, kind and input (and, for an
    organisation's deployment, the same accountId and region as asked; a request that
    names neither hashes as it always did)."""
    request: dict[str, Any] = {"agentId": agent_id, "kind": kind, "input": input_text}
    if account_id is not None:
        request["accountId"] = account_id
    if region is not None:
        request["region"] = region
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class LaunchRequest:
    """One launch as the tier router hands it to a target's launcher."""

    caller: Caller
    agent: dict[str, Any]
    kind: str
    input_text: str
    run_id: str
    request_hash: str
    # An organisation's deployment may name its account and region (None: the target's).
    account_id: str | None = None
    region: str | None = None

    @classmethod
    def of(
        cls,
        caller: Caller,
        agent: dict[str, Any],
        kind: str,
        input_text: str,
        idempotency_key: str | None,
        *,
        account_id: str | None = None,
        region: str | None = None,
    ) -> LaunchRequest:
        return cls(
            caller=caller,
            agent=agent,
            kind=kind,
            input_text=input_text,
            run_id=run_id_for(caller.user_id, idempotency_key),
            request_hash=hash_request(
                agent["agentId"], kind, input_text, account_id=account_id, region=region
            ),
            account_id=account_id,
            region=region,
        )

    @property
    def agent_id(self) -> str:
        return str(self.agent["agentId"])


def new_run(
    request: LaunchRequest,
    *,
    target: str,
    account_id: str,
    region: str,
    now: datetime,
    retention: timedelta,
    **extra: Any,
) -> dict[str, Any]:
    """A PENDING run as launchers store it; `extra` is the target's own fields. A run of
    an organisation's agent carries its `organizationId` (the runs' byOrganization index:
    every member reads it)."""
    organization = request.agent.get("organizationId")
    if organization:
        extra = {"organizationId": organization, **extra}
    return {
        "runId": request.run_id,
        "userId": request.caller.user_id,
        "agentId": request.agent_id,
        "kind": request.kind,
        "target": target,
        "accountId": account_id,
        "region": region,
        **extra,
        "status": PENDING,
        "createdAt": timeutil.iso(now),
        "requestHash": request.request_hash,
        # Provisional: a run that never finishes still expires; its stop resets it.
        "expiresAt": timeutil.epoch(now + retention + timedelta(days=1)),
    }


def cost_allocation_tags(run: dict[str, Any], agent: dict[str, Any]) -> dict[str, str]:
    """The tags of a task launched for an organisation (docs/enterprise.md: activate them
    as cost-allocation tags); none for a user's own agent. Empty values are left out."""
    if not run.get("organizationId"):
        return {}
    tags = {
        "organization": run["organizationId"],
        "team": agent.get("team"),
        "project": agent.get("project"),
        "user": run["userId"],
        "agent": run["agentId"],
        "run": run["runId"],
    }
    return {key: str(value) for key, value in tags.items() if value}


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


def replay(
    existing: dict[str, Any],
    request_hash: str,
    *,
    failed: Callable[[dict[str, Any]], DomainError | None],
) -> dict[str, Any]:
    """The answer to a launch whose runId already exists: the same run, or the refusal
    it got (`failed` says which launch failures answer again), never a second run."""
    if existing.get("requestHash") != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request; use a new key"
        )
    logger.info("idempotent replay", run_id=existing["runId"], status=existing.get("status"))
    refusal = failed(existing)
    if refusal is not None:
        raise refusal
    return run_view(existing)


# ---- what the API shows ---------------------------------------------------------------------


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
        "refunded": item.get("refunded"),
        "receipt": item.get("receipt"),
    }


def audit_event(
    run: dict[str, Any],
    action: str,
    *,
    result: str = SUCCESS,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    """The audit event of `action` on a run: what it is and where (never its input).
    A detail given as None is left out (a refused launch names no runId: none exists)."""
    return AuditEvent(
        actor=str(run["userId"]),
        action=action,
        result=result,
        account_id=run.get("accountId") or None,
        reason=reason,
        organization_id=run.get("organizationId") or None,
        details={
            "region": run.get("region") or None,
            "runId": run["runId"],
            "agentId": run.get("agentId"),
            "kind": run.get("kind"),
            "target": run.get("target"),
            **details,
        },
    )


# ---- how a run ends -------------------------------------------------------------------------


def finished(reason: str, now: datetime, retention: timedelta) -> dict[str, Any]:
    """The fields of a run that ends now for `reason` (kept `retention` from now)."""
    return {
        "stopReason": reason[:MAX_STOP_REASON],
        "stoppedAt": timeutil.iso(now),
        "expiresAt": timeutil.epoch(now + retention),
    }


def launch_failed(reason: str, now: datetime, retention: timedelta) -> dict[str, Any]:
    """The failure record of a launch that could not start its task."""
    return finished(f"agent-builder: launch failed: {reason}", now, retention)


def launch_failure_reason(exc: Exception) -> str:
    """Why a launch failed, in words safe to show and store (no request details)."""
    if isinstance(exc, TaskStartFailed):
        return f"ECS started no task: {exc}"[:200]
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        operation = getattr(exc, "operation_name", "AWS call")
        return f"{operation} failed with {error.get('Code', 'an error')}"[:200]
    from botocore.exceptions import BotoCoreError

    if isinstance(exc, BotoCoreError):
        # botocore's own words: the endpoint or the missing piece, never a request's content.
        return f"AWS did not answer: {exc}"[:200]
    return f"{type(exc).__name__}"


# ---- ECS task details -> run fields ---------------------------------------------------------

# ECS lastStatus -> run status. The states after RUNNING count as RUNNING only if the
# task had started (startedAt present); otherwise it is still the launch going on.
AFTER_START = frozenset({"RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"})
# A platform test whose task stopped for one of these (or never started) is given back.
REFUNDED_STOP_CODES = frozenset({"TaskFailedToStart", "SpotInterruption"})


def task_status(detail: dict[str, Any]) -> str:
    last = detail.get("lastStatus")
    if last == "STOPPED":
        return STOPPED
    if last in AFTER_START and detail.get("startedAt"):
        return RUNNING
    return PENDING


def task_state(
    detail: dict[str, Any], *, container_name: str, now: datetime, retention: timedelta
) -> tuple[str, dict[str, Any]]:
    """The run status and fields an ECS task's details (an event's `detail`, or a
    DescribeTasks task) say. `now` stands in for a stop time ECS did not give."""
    detail = {
        key: timeutil.iso(value) if isinstance(value, datetime) else value
        for key, value in detail.items()
    }
    status = task_status(detail)
    fields: dict[str, Any] = {"lastStatus": detail.get("lastStatus")}
    started = _iso_or_none(detail.get("startedAt"))
    if status in (RUNNING, STOPPED) and started:
        fields["startedAt"] = started
    if status == STOPPED:
        stopped_at = _iso_or_none(detail.get("stoppedAt")) or timeutil.iso(now)
        stop_code = detail.get("stopCode")
        fields.update(
            stoppedAt=stopped_at,
            stopReason=str(detail.get("stoppedReason") or stop_code or "stopped")[:MAX_STOP_REASON],
            stopCode=stop_code,
            exitCode=_exit_code(detail, container_name),
            expiresAt=timeutil.epoch(timeutil.parse_iso(stopped_at) + retention),
        )
    return status, fields


def gives_test_back(fields: dict[str, Any]) -> bool:
    """A stopped task that never ran, or that Fargate Spot reclaimed, costs no test."""
    return not fields.get("startedAt") or fields.get("stopCode") in REFUNDED_STOP_CODES


def _iso_or_none(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return timeutil.iso(timeutil.parse_iso(value))
    except ValueError:
        return None


def _exit_code(detail: dict[str, Any], container_name: str) -> int | None:
    for container in detail.get("containers") or []:
        if container.get("name") == container_name and isinstance(container.get("exitCode"), int):
            return int(container["exitCode"])
    return None


# ---- log pages ------------------------------------------------------------------------------


def log_stream(stream_prefix: str, container_name: str, task_arn: str) -> str:
    """The awslogs stream of the run's task: `<prefix>/<container>/<task id>`."""
    return f"{stream_prefix}/{container_name}/{task_id(task_arn)}"


def no_log_lines() -> dict[str, Any]:
    """The page of a run without a task (yet)."""
    return {"lines": [], "nextToken": None}


def log_lines(page: LogPage) -> dict[str, Any]:
    """A page of CloudWatch events as the API shows it."""
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
