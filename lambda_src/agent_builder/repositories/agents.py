"""The agents table: a user's agents, keyed (userId, agentId).

Creating and deleting an agent are each one transaction with their audit record (an
item from `AuditLog.put_request`): one call, as the plain PutItem/DeleteItem was, and
no agent changes without its record, nor a record without its change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_builder.errors import AgentNotFound
from agent_builder.repositories.dynamo import error_code, from_item, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class AgentsRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def create(self, agent: dict[str, Any], audit: dict[str, Any]) -> None:
        put = {
            "TableName": self._table,
            "Item": to_item(agent),
            "ConditionExpression": "attribute_not_exists(agentId)",
        }
        items: list[Any] = [{"Put": put}, audit]
        self._client.transact_write_items(TransactItems=items)

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

    def delete(self, user_id: str, agent_id: str, audit: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        delete = {
            "TableName": self._table,
            "Key": {"userId": {"S": user_id}, "agentId": {"S": agent_id}},
            "ConditionExpression": "attribute_exists(agentId)",
        }
        items: list[Any] = [{"Delete": delete}, audit]
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                # Not there (or another user's): nothing changed, so nothing is audited.
                raise AgentNotFound("no agent with this id") from None
            raise
