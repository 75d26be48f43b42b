"""The audit table: who did what to which account, with what result, and when.

Keyed by scope (`user#<sub>`, `org#<organizationId>`) and a time-ordered event id
(`<ISO-8601 UTC>#<uuid>`), so a scope's trail reads in order with one Query. An
AuditEvent becomes either items of the transaction that makes the change
(`transaction_item`, `transaction_items`) or a write of its own (`record`). An event of
an organisation is stored twice, in the actor's trail and in the organisation's, with
the same event id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent_builder import timeutil
from agent_builder.audit import AuditEvent
from agent_builder.repositories.dynamo import from_item, to_item, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AUDIT_RETENTION = timedelta(days=400)
MAX_REASON = 500


def user_scope(user_id: str) -> str:
    return f"user#{user_id}"


def org_scope(organization_id: str) -> str:
    return f"org#{organization_id}"


# What a trail shows of a record (GET /audit, GET /org/audit).
TARGET_FIELDS = ("runId", "agentId", "target")


def audit_view(item: dict[str, Any]) -> dict[str, Any]:
    target = next((item[name] for name in TARGET_FIELDS if item.get(name)), None)
    return {
        "eventId": item["eventId"],
        "at": item.get("at"),
        "actorId": item.get("userId"),
        "action": item.get("action"),
        "target": target,
        "accountId": item.get("accountId"),
        "result": item.get("result"),
        "code": item.get("code"),
        "reason": item.get("reason"),
    }


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

    def _item(
        self, event: AuditEvent, scope: str | None = None, event_id: str = ""
    ) -> dict[str, Any]:
        now = self._clock()
        at = timeutil.iso(now)
        return to_item(
            {
                "scope": scope or user_scope(event.actor),
                "eventId": event_id or f"{at}#{uuid.uuid4()}",
                "organizationId": event.organization_id,
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

    def transaction_items(
        self, event: AuditEvent, *, actor_trail: bool = True
    ) -> list[dict[str, Any]]:
        """The record in the actor's trail and, for an organisation's event, in its trail
        (only there without `actor_trail`: an actor that is no user, e.g. a stack)."""
        first = self._item(event)
        items = [first] if actor_trail or not event.organization_id else []
        if event.organization_id:
            items.append(self._item(event, org_scope(event.organization_id), first["eventId"]["S"]))
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(eventId)",
                }
            }
            for item in items
        ]

    def record(self, event: AuditEvent) -> None:
        if not event.organization_id:
            self._client.put_item(TableName=self._table, Item=self._item(event))
            return
        cancelled = transact(self._client, self.transaction_items(event))
        if cancelled is not None:
            raise cancelled.error

    def trail(
        self,
        scope: str,
        limit: int,
        after: str | None,
        *,
        actor: str | None = None,
        action: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a scope's records, newest first, and the eventId to continue after.

        `start`/`end` (ISO-8601 UTC) bound the event ids, which begin with their time;
        `actor` and `action` filter the page (DynamoDB filters after `Limit`, so a page
        may hold fewer records than asked and still have a next one).
        """
        names = {"#scope": "scope"}
        values: dict[str, Any] = {":scope": {"S": scope}}
        key = "#scope = :scope"
        if start or end:
            names["#id"] = "eventId"
            values[":start"] = {"S": start or "0"}
            # Every id of a time <= end sorts below end + "#~" ('~' is above uuid characters).
            values[":end"] = {"S": f"{end}#~" if end else "~"}
            key += " AND #id BETWEEN :start AND :end"
        filters = []
        for name, value in (("userId", actor), ("action", action)):
            if value:
                names[f"#{name}"] = name
                values[f":{name}"] = {"S": value}
                filters.append(f"#{name} = :{name}")
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        if after:
            params["ExclusiveStartKey"] = {"scope": {"S": scope}, "eventId": {"S": after}}
        response = self._client.query(**params)
        last = response.get("LastEvaluatedKey")
        return [from_item(item) for item in response.get("Items", [])], (
            last["eventId"]["S"] if last else None
        )
