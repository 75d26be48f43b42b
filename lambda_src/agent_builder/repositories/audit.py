"""The audit table: who did what to which account, with what result, and when.

Keyed by scope (`user#<sub>`) and a time-ordered event id (`<ISO-8601 UTC>#<uuid>`), so a
scope's trail reads in order with one Query. An AuditEvent becomes either one item of
the transaction that makes the change (`transaction_item`) or a PutItem of its own
(`record`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent_builder import timeutil
from agent_builder.audit import AuditEvent
from agent_builder.repositories.dynamo import to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AUDIT_RETENTION = timedelta(days=400)
MAX_REASON = 500


def user_scope(user_id: str) -> str:
    return f"user#{user_id}"


class AuditLog:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def _item(self, event: AuditEvent) -> dict[str, Any]:
        now = self._clock()
        at = timeutil.iso(now)
        return to_item(
            {
                "scope": user_scope(event.actor),
                "eventId": f"{at}#{uuid.uuid4()}",
                "userId": event.actor,
                "action": event.action,
                "result": event.result,
                "accountId": event.account_id,
                "reason": event.reason[:MAX_REASON] if event.reason else None,
                "at": at,
                "expiresAt": timeutil.epoch(now + AUDIT_RETENTION),
                **event.details,
            }
        )

    def transaction_item(self, event: AuditEvent) -> dict[str, Any]:
        """The record as one item of a TransactWriteItems."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": self._item(event),
                "ConditionExpression": "attribute_not_exists(eventId)",
            }
        }

    def record(self, event: AuditEvent) -> None:
        self._client.put_item(TableName=self._table, Item=self._item(event))
