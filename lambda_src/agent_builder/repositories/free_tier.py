"""The free tier's pause: a mark on the platform's usage item of the month.

The charge transaction already updates that item for every platform test
(repositories/ledger.py), conditioned on the mark being absent, so a pause is enforced
with no read and no extra call; a new month is a new item, so the month's turn resumes
the free tier with nothing to run. Pausing and resuming each write the item and their
audit record in one transaction, and only when they change something.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent_builder import timeutil
from agent_builder.audit import AuditEvent
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import from_item, transact
from agent_builder.repositories.ledger import (
    PAUSED_AT,
    PLATFORM_USER,
    USAGE_RETENTION,
    tests_period,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PAUSED_BY = "pausedBy"


class FreeTierState:
    def __init__(self, client: DynamoDBClient, *, usage_table: str, audit: AuditLog) -> None:
        self._client = client
        self._usage = usage_table
        self._audit = audit

    def _key(self, now: datetime) -> dict[str, Any]:
        return {"userId": {"S": PLATFORM_USER}, "period": {"S": tests_period(now)}}

    def paused(self, now: datetime) -> dict[str, Any] | None:
        """`{pausedAt, pausedBy}` while `now`'s month is paused, else None."""
        item = self._client.get_item(
            TableName=self._usage, Key=self._key(now), ConsistentRead=True
        ).get("Item")
        found = from_item(item) if item else {}
        if not found.get(PAUSED_AT):
            return None
        return {PAUSED_AT: found[PAUSED_AT], PAUSED_BY: found.get(PAUSED_BY)}

    def pause(self, now: datetime, *, by: str, audit: AuditEvent) -> bool:
        """Pause `now`'s month; False (nothing written) when it already is."""
        reset = timeutil.next_month_start(now)
        update = {
            "TableName": self._usage,
            "Key": self._key(now),
            "UpdateExpression": "SET #paused = :at, #by = :by, "
            "expiresAt = if_not_exists(expiresAt, :expires)",
            "ConditionExpression": "attribute_not_exists(#paused)",
            "ExpressionAttributeNames": {"#paused": PAUSED_AT, "#by": PAUSED_BY},
            "ExpressionAttributeValues": {
                ":at": {"S": timeutil.iso(now)},
                ":by": {"S": by},
                ":expires": {"N": str(timeutil.epoch(reset + USAGE_RETENTION))},
            },
        }
        return self._write(update, audit)

    def resume(self, now: datetime, *, audit: AuditEvent) -> bool:
        """Lift `now`'s month's pause; False (nothing written) when it is not paused."""
        update = {
            "TableName": self._usage,
            "Key": self._key(now),
            "UpdateExpression": "REMOVE #paused, #by",
            "ConditionExpression": "attribute_exists(#paused)",
            "ExpressionAttributeNames": {"#paused": PAUSED_AT, "#by": PAUSED_BY},
        }
        return self._write(update, audit)

    def _write(self, update: dict[str, Any], audit: AuditEvent) -> bool:
        cancelled = transact(
            self._client, [{"Update": update}, self._audit.transaction_item(audit)]
        )
        if cancelled is None:
            return True
        if cancelled.failed(0):
            return False
        raise cancelled.error
