"""Launching a run: the tier router (LaunchService) and the platform launcher.

A test always runs on the platform cluster and costs one of the month's tests; a
deployment goes to its tier's target (TIER_TARGETS). The steps, refunds, idempotency and
audit records of a launch: lambda_src/CONTRACT.md "Launch" and "Audit".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from agent_builder import runs as lifecycle
from agent_builder import timeutil
from agent_builder.access import Membership
from agent_builder.audit import FAILURE, REFUSED
from agent_builder.errors import (
    AccountNotConnected,
    CapacityExhausted,
    DomainError,
    FreeTierPaused,
    InvalidInput,
    InvalidRegion,
    LaunchConflict,
    LaunchFailed,
    NoEnterpriseTarget,
    QuotaExceeded,
    RateLimited,
    UnknownTier,
)
from agent_builder.gateways.artifacts import ArtifactsGateway, request_key, result_key
from agent_builder.gateways.ecs import ClusterGateway, TaskSpec
from agent_builder.gateways.scheduler import TimeLimitScheduler
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.ledger import LaunchLedger, Limits
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.services.agents import AgentService
from agent_builder.services.caller import Caller
from agent_builder.validation import (
    ACCOUNT_ID,
    IDEMPOTENCY_KEY,
    MAX_INPUT_BYTES,
    is_aws_region,
    is_blank,
)

logger = Logger(child=True)

# A deployment may come without input; the runner needs some, so it gets this prompt.
DEFAULT_DEPLOY_INPUT = "Start."
LAUNCH_FAILED_MESSAGE = "the run could not be started and the test was given back"

# Which target serves a tier's deployments.
TIER_TARGETS = {"freemium": "platform", "personal": "customer", "enterprise": "enterprise"}


class Launcher(Protocol):
    """Starts a run on one target (the tier router's `launchers`, by target name)."""

    def launch(self, request: lifecycle.LaunchRequest) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LaunchRecords:
    """Where every launcher records its runs (and their audit), and within which limits."""

    ledger: LaunchLedger
    audit: AuditLog
    limits: Limits
    retention_days: int
    max_output_tokens: int

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)


def arn_account_region(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    return (parts[4], parts[3]) if len(parts) > 5 else ("", "")


class PlatformLauncher:
    """Runs on the platform's own test cluster: quota-charged, time-limited."""

    def __init__(
        self,
        *,
        records: LaunchRecords,
        artifacts: ArtifactsGateway,
        cluster: ClusterGateway,
        scheduler: TimeLimitScheduler,
        max_test_minutes: int,
        project: str,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._records = records
        self._artifacts = artifacts
        self._cluster = cluster
        self._scheduler = scheduler
        self._minutes = max_test_minutes
        self._project = project
        self._clock = clock

    def launch(self, request: lifecycle.LaunchRequest) -> dict[str, Any]:
        now = self._clock()
        run_id, agent = request.run_id, request.agent
        account, region = arn_account_region(self._cluster.cluster_arn)
        run = lifecycle.new_run(
            request,
            target="platform",
            account_id=account,
            region=region,
            now=now,
            retention=self._records.retention,
            # What its receipt prices the tokens at (agent_builder/receipts.py).
            model=agent.get("model"),
        )
        try:
            existing = self._records.ledger.charge(
                run,
                email=request.caller.email,
                now=now,
                limits=self._records.limits,
                audit=lifecycle.audit_event(run, f"{request.kind}.launch"),
            )
        except (
            QuotaExceeded,
            RateLimited,
            LaunchConflict,
            CapacityExhausted,
            FreeTierPaused,
        ) as refusal:
            self._record_refusal(run, refusal)
            raise
        if existing is not None:
            return lifecycle.replay(existing, request.request_hash, failed=_failed_and_given_back)
        logger.info("test charged", run_id=run_id, agent_id=request.agent_id, kind=request.kind)

        task_arn: str | None = None
        try:
            self._artifacts.put_request(
                run_id,
                lifecycle.request_document(
                    run_id, agent, request.input_text, self._records.max_output_tokens
                ),
            )
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
                        "userId": request.caller.user_id,
                        "agentId": request.agent_id,
                        "runId": run_id,
                        **lifecycle.cost_allocation_tags(run, agent),
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
        return lifecycle.run_view(run)

    def _record_refusal(self, run: dict[str, Any], refusal: DomainError) -> None:
        # No run was stored, so the record names the agent, not the runId. A lost write
        # is logged, not raised: the caller still gets the refusal, not a 500.
        try:
            self._records.audit.record(
                lifecycle.audit_event(
                    run,
                    "launch.refused",
                    result=REFUSED,
                    reason=refusal.message,
                    code=refusal.code,
                    runId=None,
                )
            )
        except Exception:
            logger.exception("could not write the audit record of a refused launch")

    def _give_back(self, run: dict[str, Any], task_arn: str | None, exc: Exception) -> None:
        reason = lifecycle.launch_failure_reason(exc)
        logger.error("launch failed", run_id=run["runId"], reason=reason, exc_info=exc)
        if task_arn:
            # The task started but has no time limit: stop it now rather than let it run
            # unpaid-for until the sweeper finds it.
            try:
                self._cluster.stop(task_arn, f"agent-builder: launch failed ({reason})")
            except Exception:
                logger.exception("could not stop the task of a failed launch", run_id=run["runId"])
        try:
            self._records.ledger.finish_and_refund(
                run,
                status=lifecycle.FAILED,
                fields=lifecycle.launch_failed(reason, self._clock(), self._records.retention),
                audit=lifecycle.audit_event(
                    run, "launch.failed", result=FAILURE, reason=reason, code=LaunchFailed.code
                ),
            )
        except Exception:
            # The run stays PENDING without a task; reading it later repairs it (runs.py).
            logger.exception("could not refund a failed launch", run_id=run["runId"])


def _failed_and_given_back(existing: dict[str, Any]) -> DomainError | None:
    """A replayed key whose launch failed (and was refunded) answers LAUNCH_FAILED again."""
    if existing.get("status") == lifecycle.FAILED and existing.get("refunded"):
        return LaunchFailed(f"{LAUNCH_FAILED_MESSAGE}; retry with a new Idempotency-Key")
    return None


# What a member is told while their organisation has no deployment target.
NO_ENTERPRISE_TARGET_MESSAGE = (
    "your organisation has no AWS target for deployments yet: an admin registers an "
    "organisation account (POST /org/accounts/onboarding, then launch the StackSet template) "
    "or configures IAM Identity Center (PUT /org/sso), after which you start a session "
    "(POST /org/sso/device-authorization); tests on the platform work meanwhile "
    "(POST /agents/{agentId}/tests)"
)


class LaunchService:
    def __init__(
        self,
        agents: AgentService,
        profiles: ProfilesRepository,
        launchers: dict[str, Launcher],
        *,
        region_check: Callable[[Membership, str, str], None] | None = None,
    ) -> None:
        self._agents = agents
        self._profiles = profiles
        self._launchers = launchers
        # The organisation's allowed regions (services/organizations.py), built on first use.
        self._region_check = region_check

    def test(
        self, caller: Caller, agent_id: str, input_text: str, idempotency_key: str | None
    ) -> dict[str, Any]:
        _check_request(input_text, idempotency_key)
        agent, _member = self._agents.require_for_launch(caller, agent_id)
        return self._launch(caller, agent, "test", "platform", input_text, idempotency_key)

    def deploy(
        self,
        caller: Caller,
        agent_id: str,
        input_text: str | None,
        idempotency_key: str | None,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        """Deploy to the caller's tier's target. `region` and `account_id` are for an
        organisation's deployments only (None: the target's own, see
        services/enterprise_launcher.py)."""
        text = DEFAULT_DEPLOY_INPUT if input_text is None else input_text
        _check_request(text, idempotency_key)
        if region is not None and not is_aws_region(region):
            raise InvalidRegion(f"region {region!r} is not an AWS region")
        if account_id is not None and not ACCOUNT_ID.fullmatch(account_id):
            raise InvalidInput("accountId must be a 12-digit AWS account id")
        agent, member = self._agents.require_for_launch(caller, agent_id)
        tier = member.tier or "freemium"
        target = TIER_TARGETS.get(tier)
        if target is None:
            logger.error("profile has an unknown tier", tier=tier)
            raise UnknownTier(f"your account has an unknown tier ({tier!r}); contact support")
        if region is not None and target != "enterprise":
            raise InvalidInput(
                "region is chosen for an organisation's deployments only; yours run in your "
                "target's own region"
            )
        if account_id is not None and target != "enterprise":
            raise InvalidInput(
                "accountId is chosen for an organisation's deployments only; yours run in "
                "your target's own account"
            )
        if target == "enterprise" and region is not None and self._region_check is not None:
            # Before anything is called in AWS (403 REGION_NOT_ALLOWED, audited).
            self._region_check(member, region, agent["agentId"])
        if target not in self._launchers:
            if tier == "personal":
                raise AccountNotConnected(
                    "deployments go to your own AWS account, which is not connected yet: "
                    "connect it first (POST /aws-account/onboarding)"
                )
            raise NoEnterpriseTarget(NO_ENTERPRISE_TARGET_MESSAGE)
        return self._launch(
            caller,
            agent,
            "deployment",
            target,
            text,
            idempotency_key,
            region=region,
            account_id=account_id,
        )

    def _launch(
        self,
        caller: Caller,
        agent: dict[str, Any],
        kind: str,
        target: str,
        input_text: str,
        idempotency_key: str | None,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        return self._launchers[target].launch(
            lifecycle.LaunchRequest.of(
                caller,
                agent,
                kind,
                input_text,
                idempotency_key,
                region=region,
                account_id=account_id,
            )
        )


def _check_request(input_text: str, idempotency_key: str | None) -> None:
    if is_blank(input_text):
        raise InvalidInput("input must not be blank")
    if len(input_text.encode("utf-8")) > MAX_INPUT_BYTES:
        raise InvalidInput(f"input must be at most {MAX_INPUT_BYTES} bytes (UTF-8)")
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInput(
            "Idempotency-Key must be 1-128 characters of letters, digits, '.', '_', ':' or '-'"
        )
