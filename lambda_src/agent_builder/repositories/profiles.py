"""The profiles table: one item per user, created on first sign-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_builder.repositories.dynamo import from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_TIER = "freemium"


class ProfilesRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def ensure(self, user_id: str, email: str | None, now_iso: str) -> dict[str, Any]:
        """The user's profile, created as freemium if missing, in one UpdateItem.

        if_not_exists makes the first write win without a read: two first calls racing
        both see the same tier and createdAt. A tier set later (upgrade) is never reset.
        """
        names = {"#tier": "tier", "#createdAt": "createdAt"}
        values: dict[str, Any] = {":tier": {"S": DEFAULT_TIER}, ":now": {"S": now_iso}}
        update = (
            "SET #tier = if_not_exists(#tier, :tier), #createdAt = if_not_exists(#createdAt, :now)"
        )
        if email:
            names["#email"] = "email"
            values[":email"] = {"S": email}
            update += ", #email = :email"
        response = self._client.update_item(
            TableName=self._table,
            Key={"userId": {"S": user_id}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"])

    def get(self, user_id: str, *, consistent: bool = False) -> dict[str, Any] | None:
        """The profile; `consistent` for a role check (a role just changed holds at once)."""
        response = self._client.get_item(
            TableName=self._table, Key={"userId": {"S": user_id}}, ConsistentRead=consistent
        )
        item = response.get("Item")
        return from_item(item) if item else None
