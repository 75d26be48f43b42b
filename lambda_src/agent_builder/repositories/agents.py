"""The agents table: a user's agents, keyed (userId, agentId).

Creating and deleting an agent are each one transaction with their audit record: one
call, as a plain PutItem/DeleteItem would be, and no agent changes without its record,
nor a record without its change. The same transaction keeps the user's agent count on
their profile (`agentCount`), and creating refuses past `max_per_user`: no read first,
so concurrent creates cannot pass the limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_builder.audit import AuditEvent
from agent_builder.errors import AgentLimit, AgentNotFound
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import from_item, to_item, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class AgentsRepository:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        audit: AuditLog,
        profiles_table: str,
        max_per_user: int,
    ) -> None:
        self._client = client
        self._table = table
        self._audit = audit
        self._profiles = profiles_table
        self._max = max_per_user

    def _count(self, user_id: str, delta: int) -> dict[str, Any]:
        condition = (
            "attribute_not_exists(agentCount) OR agentCount < :max"
            if delta > 0
            else "agentCount > :zero"
        )
        values: dict[str, Any] = {":delta": {"N": str(delta)}}
        values[":max" if delta > 0 else ":zero"] = {"N": str(self._max if delta > 0 else 0)}
        return {
            "Update": {
                "TableName": self._profiles,
                "Key": {"userId": {"S": user_id}},
                "UpdateExpression": "ADD agentCount :delta",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }

    def create(self, agent: dict[str, Any], audit: AuditEvent) -> None:
        put = {
            "TableName": self._table,
            "Item": to_item(agent),
            "ConditionExpression": "attribute_not_exists(agentId)",
        }
        cancelled = transact(
            self._client,
            [{"Put": put}, self._count(agent["userId"], +1), self._audit.transaction_item(audit)],
        )
        if cancelled is None:
            return
        if cancelled.failed(1):
            raise AgentLimit(
                f"at most {self._max} agents per user: delete one to create another"
            ) from None
        # A fresh uuid4 that exists already: nothing to answer but an error.
        raise cancelled.error

    def get(self, user_id: str, agent_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"userId": {"S": user_id}, "agentId": {"S": agent_id}}
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def list(
        self, user_id: str, limit: int, after_agent_id: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the user's agents and the agentId to continue after (or None)."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "userId = :user",
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "Limit": limit,
        }
        if after_agent_id:
            params["ExclusiveStartKey"] = {
                "userId": {"S": user_id},
                "agentId": {"S": after_agent_id},
            }
        response = self._client.query(**params)
        last = response.get("LastEvaluatedKey")
        return [from_item(item) for item in response.get("Items", [])], (
            last["agentId"]["S"] if last else None
        )

    def delete(self, user_id: str, agent_id: str, audit: AuditEvent) -> None:
        delete = {
            "TableName": self._table,
            "Key": {"userId": {"S": user_id}, "agentId": {"S": agent_id}},
            "ConditionExpression": "attribute_exists(agentId)",
        }
        record = self._audit.transaction_item(audit)
        cancelled = transact(self._client, [{"Delete": delete}, self._count(user_id, -1), record])
        if cancelled is not None and not cancelled.failed(0) and cancelled.failed(1):
            # Agents made before the count existed: delete them without counting down.
            cancelled = transact(self._client, [{"Delete": delete}, record])
        if cancelled is None:
            return
        if cancelled.failed(0):
            # Not there (or another user's): nothing changed, so nothing is audited.
            raise AgentNotFound("no agent with this id") from None
        raise cancelled.error
