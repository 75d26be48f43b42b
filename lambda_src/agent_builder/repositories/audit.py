"""The audit table: who did what to which account, with what result, and when.

Keyed by scope (`user#<sub>`; organisations will use `org#<id>`) and a time-ordered
event id (`<ISO-8601 UTC>#<uuid>`), so a scope's trail reads in order with one Query.
Records never hold secrets: no External ID, no credentials, no agent input or
instructions. `result` is one of success / refused (a limit said no; nothing changed) /
failure, with the refusing error's `code` where there is one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent_builder import timeutil
from agent_builder.repositories.dynamo import to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AUDIT_RETENTION = timedelta(days=400)
SUCCESS = "success"
REFUSED = "refused"
FAILURE = "failure"
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

    @property
    def table(self) -> str:
        return self._table

    def item(
        self,
        user_id: str,
        action: str,
        *,
        result: str,
        account_id: str | None = None,
        reason: str | None = None,
        **details: str | None,
    ) -> dict[str, Any]:
        """The record as a DynamoDB item (for a transaction, or for `record`)."""
        now = self._clock()
        at = timeutil.iso(now)
        return to_item(
            {
                "scope": user_scope(user_id),
                "eventId": f"{at}#{uuid.uuid4()}",
                "userId": user_id,
                "action": action,
                "result": result,
                "accountId": account_id,
                "reason": reason[:MAX_REASON] if reason else None,
                "at": at,
                "expiresAt": timeutil.epoch(now + AUDIT_RETENTION),
                **details,
            }
        )

    def put_request(self, user_id: str, action: str, **fields: Any) -> dict[str, Any]:
        """The record as one item of a TransactWriteItems."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": self.item(user_id, action, **fields),
                "ConditionExpression": "attribute_not_exists(eventId)",
            }
        }

    def record(self, user_id: str, action: str, **fields: Any) -> None:
        self._client.put_item(TableName=self._table, Item=self.item(user_id, action, **fields))
