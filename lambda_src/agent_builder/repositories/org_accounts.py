"""An organisation's AWS accounts: its one External ID, its registration token, and every
account that registered with them.

One item in the accounts table, keyed `userId = #org#<organizationId>` (no Cognito `sub`
starts with `#`), so the table's `byExternalId` index finds the organisation a
registration message belongs to, exactly as it finds a user (services/registration.py).
Item: userId, organizationId, externalId, createdAt, rotatedAt, registrationTokenHash
(SHA-256 hex; the token itself is never stored), tokenIssuedAt, and `accounts`, a map
account id -> the connection (the Tier 2 connection fields, plus the stack bound to it:
registrationStackId, registrationPhysicalId). A map in one item keeps connect and
disconnect single conditional writes; at ~700 bytes a connection, one item holds several
hundred accounts (DynamoDB's 400 KB item limit).

Every connect is conditioned on the External ID it was validated with and on the token
(multi-use: not consumed) or on the stack already bound to that account; every
disconnect on the account being there (and, from a stack, bound to that stack).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_builder.repositories.dynamo import error_code, from_item, to_attr, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ORG_PREFIX = "#org#"


def org_key(organization_id: str) -> str:
    return f"{ORG_PREFIX}{organization_id}"


def organization_of(record: dict[str, Any]) -> str | None:
    """The organisation id of an accounts-table item, or None for a user's item."""
    key = str(record.get("userId") or "")
    return key[len(ORG_PREFIX) :] if key.startswith(ORG_PREFIX) else None


class OrgAccountChanged(Exception):
    """The item is not in the state the write was conditioned on."""


class OrgAccountsRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, organization_id: str) -> dict[str, Any]:
        return {"userId": {"S": org_key(organization_id)}}

    def get(self, organization_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(organization_id), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def create(
        self, organization_id: str, *, external_id: str, token_digest: str, now_iso: str
    ) -> bool:
        """False if the organisation already has its item."""
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._key(organization_id),
                    "organizationId": {"S": organization_id},
                    "externalId": {"S": external_id},
                    "createdAt": {"S": now_iso},
                    "registrationTokenHash": {"S": token_digest},
                    "tokenIssuedAt": {"S": now_iso},
                    "accounts": {"M": {}},
                },
                ConditionExpression="attribute_not_exists(userId)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def issue_token(
        self,
        organization_id: str,
        *,
        token_digest: str,
        now_iso: str,
        new_external_id: str | None = None,
        old_external_id: str | None = None,
        extra_items: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Replace the token (and, with `new_external_id`, the External ID while no account
        is connected: the connected roles trust the old one). OrgAccountChanged otherwise."""
        update = "SET registrationTokenHash = :hash, tokenIssuedAt = :now"
        condition = "attribute_exists(userId)"
        values: dict[str, Any] = {":hash": {"S": token_digest}, ":now": {"S": now_iso}}
        if new_external_id is not None:
            update += ", externalId = :new, rotatedAt = :now"
            condition += " AND externalId = :old AND size(accounts) = :none"
            values.update(
                {
                    ":new": {"S": new_external_id},
                    ":old": {"S": str(old_external_id)},
                    ":none": {"N": "0"},
                }
            )
        self._write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._key(organization_id),
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
            extra_items,
        )

    def connect(
        self,
        organization_id: str,
        *,
        external_id: str,
        connection: dict[str, Any],
        token_digest: str | None,
        bound_stack_id: str | None,
        extra_items: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Store one account's connection.

        `token_digest`: the write requires that token to be the organisation's current one
        and the account to be new or bound to the same stack; `bound_stack_id` alone: the
        account must already be bound to that stack (an Update of the registering stack).
        """
        account_id = str(connection["accountId"])
        names = {"#accounts": "accounts", "#acct": account_id}
        values: dict[str, Any] = {":conn": to_attr(connection), ":ext": {"S": external_id}}
        condition = "externalId = :ext"
        if token_digest is not None:
            values[":tok"] = {"S": token_digest}
            values[":stack"] = {"S": str(connection.get("registrationStackId") or "")}
            condition += (
                " AND registrationTokenHash = :tok AND (attribute_not_exists(#accounts.#acct)"
                " OR #accounts.#acct.registrationStackId = :stack)"
            )
        else:
            values[":stack"] = {"S": str(bound_stack_id)}
            condition += " AND #accounts.#acct.registrationStackId = :stack"
        self._write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._key(organization_id),
                    "UpdateExpression": "SET #accounts.#acct = :conn",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
            extra_items,
        )

    def disconnect(
        self,
        organization_id: str,
        account_id: str,
        *,
        stack_id: str | None = None,
        physical_id: str | None = None,
        extra_items: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Forget one account; with `stack_id`, only if that stack (and `physical_id`) is
        the one bound to it. OrgAccountChanged if it is not there (any more)."""
        names = {"#accounts": "accounts", "#acct": account_id}
        values: dict[str, Any] = {}
        condition = "attribute_exists(#accounts.#acct)"
        if stack_id is not None:
            condition += (
                " AND #accounts.#acct.registrationStackId = :stack"
                " AND #accounts.#acct.registrationPhysicalId = :physical"
            )
            values = {":stack": {"S": stack_id}, ":physical": {"S": str(physical_id)}}
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(organization_id),
            "UpdateExpression": "REMOVE #accounts.#acct",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            update["ExpressionAttributeValues"] = values
        self._write({"Update": update}, extra_items)

    def _write(self, item: dict[str, Any], extra_items: Sequence[dict[str, Any]]) -> None:
        cancelled = transact(self._client, [item, *extra_items])
        if cancelled is None:
            return
        if cancelled.failed(0):
            raise OrgAccountChanged() from None
        raise cancelled.error


__all__ = [
    "ORG_PREFIX",
    "OrgAccountChanged",
    "OrgAccountsRepository",
    "org_key",
    "organization_of",
]
