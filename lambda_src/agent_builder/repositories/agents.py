"""The agents table: a user's agents, keyed (userId, agentId).

An organisation's agents are keyed by the organisation instead (`userId` =
`org#<organizationId>`, which no Cognito sub can be), with `createdBy` naming the member
who created it: their own agent count is the one kept.

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
            [
                {"Put": put},
                self._count(agent.get("createdBy") or agent["userId"], +1),
                *self._audit.transaction_items(audit),
            ],
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

    def get_with_profile(
        self, user_id: str, agent_id: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The user's own agent and their profile in one BatchGetItem (a launch needs both:
        the role decides before anything is charged, in the calls a launch already makes)."""
        agent_key = {"userId": {"S": user_id}, "agentId": {"S": agent_id}}
        profile_key = {"userId": {"S": user_id}}
        response = self._client.batch_get_item(
            RequestItems={
                self._table: {"Keys": [agent_key]},
                self._profiles: {"Keys": [profile_key], "ConsistentRead": True},
            }
        )
        found = response.get("Responses", {})
        agents = found.get(self._table, [])
        profiles = found.get(self._profiles, [])
        unprocessed = response.get("UnprocessedKeys") or {}
        if self._table in unprocessed:
            agent = self.get(user_id, agent_id)
        else:
            agent = from_item(agents[0]) if agents else None
        if self._profiles in unprocessed:
            item = self._client.get_item(
                TableName=self._profiles, Key=profile_key, ConsistentRead=True
            ).get("Item")
            profile = from_item(item) if item else None
        else:
            profile = from_item(profiles[0]) if profiles else None
        return agent, profile

    def delete(
        self, user_id: str, agent_id: str, audit: AuditEvent, *, created_by: str | None = None
    ) -> None:
        """Delete an agent of `user_id` (a user, or an organisation's key); the agent count
        kept is `created_by`'s (the member who created an organisation's agent)."""
        delete = {
            "TableName": self._table,
            "Key": {"userId": {"S": user_id}, "agentId": {"S": agent_id}},
            "ConditionExpression": "attribute_exists(agentId)",
        }
        records = self._audit.transaction_items(audit)
        cancelled = transact(
            self._client,
            [{"Delete": delete}, self._count(created_by or user_id, -1), *records],
        )
        if cancelled is not None and not cancelled.failed(0) and cancelled.failed(1):
            # Agents made before the count existed: delete them without counting down.
            cancelled = transact(self._client, [{"Delete": delete}, *records])
        if cancelled is None:
            return
        if cancelled.failed(0):
            # Not there (or another user's): nothing changed, so nothing is audited.
            raise AgentNotFound("no agent with this id") from None
        raise cancelled.error
