"""GET /me: the caller's profile (created on first call) and this month's usage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent_builder import timeutil
from agent_builder.repositories.ledger import LaunchLedger
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.services.caller import Caller


class ProfileService:
    def __init__(
        self,
        profiles: ProfilesRepository,
        ledger: LaunchLedger,
        *,
        tests_per_month: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._profiles = profiles
        self._ledger = ledger
        self._limit = tests_per_month
        self._clock = clock

    def ensure(self, caller: Caller) -> dict[str, Any]:
        return self._profiles.ensure(caller.user_id, caller.email, timeutil.iso(self._clock()))

    def stored(self, user_id: str) -> dict[str, Any] | None:
        """The profile as stored, read consistently (a role check: a change holds at once)."""
        return self._profiles.get(user_id, consistent=True)

    def me(self, caller: Caller) -> dict[str, Any]:
        now = self._clock()
        profile = self.ensure(caller)
        month = self._ledger.month_usage(caller.user_id, now)
        return {
            "userId": caller.user_id,
            "email": profile.get("email") or caller.email,
            "tier": profile["tier"],
            "organizationId": profile.get("organizationId"),
            "role": profile.get("role"),
            "usage": {
                "month": timeutil.month(now),
                "testsUsed": month["testsUsed"],
                "testsLimit": self._limit,
                "resetsAt": timeutil.iso(timeutil.next_month_start(now)),
                # The receipts of the month's finished platform runs, added up.
                "inputTokens": month["inputTokens"],
                "outputTokens": month["outputTokens"],
                "estimatedCostUsd": month["estimatedCostUsd"],
            },
        }
