"""The budget's kill switch: AWS Budgets says the month's actual cost passed 100 %, and
the free tier pauses until the month turns or the owner resumes it.

A notification changes state only when it can be believed: it arrived through our
budget topic's subscription (the function's resource policy lets only that topic invoke
it through SNS, and the topic's policy lets only AWS Budgets, for our budget, publish),
it names our budget, and it is an ACTUAL alert at 100 % or more of the budgeted amount.
Anything else changes nothing and is audited as refused. Pausing and resuming are
audited (scope of the reserved user `#platform`) and raise an alarm on the platform's
alarm topic. `make resume-free-tier` (scripts/resume_free_tier.py) calls `resume` with
the owner's credentials.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import REFUSED, SUCCESS, AuditEvent
from agent_builder.gateways.alarms import AlarmTopic
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.free_tier import FreeTierState
from agent_builder.repositories.ledger import PLATFORM_USER

logger = Logger(child=True)

PAUSE, RESUME, NOTIFICATION = "freetier.pause", "freetier.resume", "budget.notification"
# The share of the budget whose ACTUAL alert pauses the free tier.
PAUSE_AT_PERCENT = Decimal(100)
# Budgets' plain-text message: "Budget Name: x", "Alert Type: ACTUAL", "Budgeted Amount:
# $10.00", "Alert Threshold: > $10.00", "ACTUAL Amount: $10.52".
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.+?)\s*$", re.MULTILINE)
_AMOUNT = re.compile(r"^[>=<\s]*\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(?:USD)?$")


@dataclass(frozen=True)
class BudgetAlert:
    budget_name: str
    alert_type: str
    budgeted: Decimal
    threshold: Decimal
    actual: Decimal | None

    @property
    def percent(self) -> Decimal:
        return self.threshold / self.budgeted * 100


def parse_budget_message(text: str) -> BudgetAlert | None:
    """The alert a Budgets notification states, or None when it is not one."""
    fields = {key.strip().lower(): value for key, value in _FIELD.findall(text or "")}

    def amount(name: str) -> Decimal | None:
        match = _AMOUNT.match(fields.get(name, ""))
        if not match:
            return None
        try:
            return Decimal(match.group(1).replace(",", ""))
        except InvalidOperation:
            return None

    name, kind = fields.get("budget name"), fields.get("alert type")
    budgeted, threshold = amount("budgeted amount"), amount("alert threshold")
    if not name or not kind or budgeted is None or threshold is None or budgeted <= 0:
        return None
    return BudgetAlert(
        budget_name=name,
        alert_type=kind.upper(),
        budgeted=budgeted,
        threshold=threshold,
        actual=amount(f"{kind.lower()} amount"),
    )


class NotificationRefused(Exception):
    """A message that cannot be believed or does not ask for a pause."""


class FreeTierSwitch:
    def __init__(
        self,
        state: FreeTierState,
        audit: AuditLog,
        alarms: AlarmTopic,
        *,
        budget_topic_arn: str,
        budget_name: str,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._state = state
        self._audit = audit
        self._alarms = alarms
        self._topic = budget_topic_arn
        self._budget = budget_name
        self._clock = clock

    # ---- the budget's notification --------------------------------------------------------

    def on_notification(self, record: Mapping[str, Any]) -> str:
        """One record of the function's SNS event: "paused", "already paused" or "refused"."""
        now = self._clock()
        try:
            alert = self._believed(record, now)
        except NotificationRefused as refusal:
            logger.warning("budget notification refused", reason=str(refusal))
            self._audit.record(
                AuditEvent(
                    actor=PLATFORM_USER,
                    action=NOTIFICATION,
                    result=REFUSED,
                    reason=str(refusal),
                    details={"topicArn": _sns(record).get("TopicArn") or None},
                )
            )
            return "refused"
        month = timeutil.month(now)
        reason = (
            f"AWS Budgets: the ACTUAL cost of budget {alert.budget_name} passed "
            f"{alert.percent:.0f} % of ${alert.budgeted}"
            + (f" (now ${alert.actual})" if alert.actual is not None else "")
        )
        paused = self._state.pause(
            now,
            by="budgets.amazonaws.com",
            audit=AuditEvent(
                actor=PLATFORM_USER,
                action=PAUSE,
                reason=reason,
                details={"month": month, "by": "budgets.amazonaws.com"},
            ),
        )
        if not paused:
            logger.info("free tier already paused", month=month)
            return "already paused"
        logger.warning("free tier paused", month=month, reason=reason)
        self._alarms.raise_alarm(
            f"{self._budget}: free tier PAUSED for {month}",
            f"{reason}.\n\nPlatform tests (the free tier) answer 503 FREE_TIER_PAUSED until "
            f"{timeutil.iso(timeutil.next_month_start(now))} or until you run "
            "`make resume-free-tier`. Personal and enterprise deployments are not affected.",
        )
        return "paused"

    def _believed(self, record: Mapping[str, Any], now: datetime) -> BudgetAlert:
        sns = _sns(record)
        if record.get("EventSource") != "aws:sns" or sns.get("Type", "Notification") != (
            "Notification"
        ):
            raise NotificationRefused("not an SNS notification")
        subscription = str(record.get("EventSubscriptionArn") or "")
        if sns.get("TopicArn") != self._topic or not subscription.startswith(self._topic + ":"):
            raise NotificationRefused("not delivered by the budget topic's subscription")
        alert = parse_budget_message(str(sns.get("Message") or ""))
        if alert is None:
            raise NotificationRefused("not an AWS Budgets notification")
        if alert.budget_name != self._budget:
            raise NotificationRefused(f"about another budget ({alert.budget_name[:100]})")
        if alert.alert_type != "ACTUAL":
            raise NotificationRefused(f"a {alert.alert_type[:20]} alert, not ACTUAL")
        if alert.percent < PAUSE_AT_PERCENT:
            raise NotificationRefused(
                f"an alert at {alert.percent:.0f} % of the budget, below {PAUSE_AT_PERCENT} %"
            )
        # Published last month (delivered late, or retried past midnight UTC): it is about a
        # month that has ended, and must not pause the new one.
        published = _published(sns)
        if published is not None and timeutil.month(published) != timeutil.month(now):
            raise NotificationRefused(f"about {timeutil.month(published)}, a month that has ended")
        return alert

    # ---- the owner's resume ---------------------------------------------------------------

    def resume(self, *, by: str) -> str:
        """Lift this month's pause: "resumed", or "not paused" (nothing written)."""
        now = self._clock()
        month = timeutil.month(now)
        resumed = self._state.resume(
            now,
            audit=AuditEvent(
                actor=PLATFORM_USER,
                action=RESUME,
                result=SUCCESS,
                reason="resumed by the platform owner",
                details={"month": month, "by": by},
            ),
        )
        if not resumed:
            return "not paused"
        logger.warning("free tier resumed", month=month, by=by)
        self._alarms.raise_alarm(
            f"{self._budget}: free tier RESUMED for {month}",
            f"{by} resumed the free tier for {month}: platform tests are accepted again, "
            "although this month's AWS budget is spent.",
        )
        return "resumed"

    def status(self) -> dict[str, Any]:
        now = self._clock()
        paused = self._state.paused(now)
        return {"month": timeutil.month(now), "paused": paused is not None, **(paused or {})}


def _published(sns: Mapping[str, Any]) -> datetime | None:
    """When SNS published the message (its Timestamp), if it says so readably."""
    try:
        return timeutil.parse_iso(str(sns["Timestamp"]))
    except (KeyError, ValueError):
        return None


def _sns(record: Mapping[str, Any]) -> Mapping[str, Any]:
    sns = record.get("Sns")
    return sns if isinstance(sns, Mapping) else {}
