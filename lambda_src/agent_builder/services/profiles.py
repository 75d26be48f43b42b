"""GET /me: the caller's profile (created on first call) and this month's usage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent_builder import timeutil
from agent_builder.repositories.ledger import tests_period
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.services.caller import Caller

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class ProfileService:
    def __init__(
        self,
        profiles: ProfilesRepository,
        usage_client: DynamoDBClient,
        *,
        usage_table: str,
        tests_per_month: int,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._profiles = profiles
        self._usage = usage_client
        self._usage_table = usage_table
        self._limit = tests_per_month
        self._clock = clock

    def ensure(self, caller: Caller) -> dict[str, Any]:
        return self._profiles.ensure(caller.user_id, caller.email, timeutil.iso(self._clock()))

    def me(self, caller: Caller) -> dict[str, Any]:
        now = self._clock()
        profile = self.ensure(caller)
        response = self._usage.get_item(
            TableName=self._usage_table,
            Key={"userId": {"S": caller.user_id}, "period": {"S": tests_period(now)}},
            ProjectionExpression="testsUsed",
        )
        used = int(response.get("Item", {}).get("testsUsed", {}).get("N", "0"))
        return {
            "userId": caller.user_id,
            "email": profile.get("email") or caller.email,
            "tier": profile["tier"],
            "organizationId": profile.get("organizationId"),
            "role": profile.get("role"),
            "usage": {
                "month": timeutil.month(now),
                "testsUsed": used,
                "testsLimit": self._limit,
                "resetsAt": timeutil.iso(timeutil.next_month_start(now)),
            },
        }
