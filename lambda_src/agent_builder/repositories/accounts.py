"""The accounts table: one item per user, the External ID and, once connected, the account.

Item: userId, externalId, status (pending | connected), createdAt, the registration
token's SHA-256 (registrationTokenHash, never the token) and its expiry
(registrationTokenExpiresAt, epoch seconds) until a registration consumes it, and while
connected roleArn, accountId, region, resourcePrefix, clusterArn, subnetIds,
securityGroupId, templateVersion (MAJOR.MINOR.PATCH, or `unknown` when a pasted role's
stack could not be read), stackId (the onboarding stack's id, when known), connectedAt,
connectedVia (api | registration), and, connected by registration, the stack bound to it
(registrationStackId, registrationPhysicalId). GSI byExternalId finds the user a
customer stack's registration message belongs to.

Connecting and disconnecting are one transaction each: the account item (conditional
on the External ID it was validated with, on being pending or connected to the same
account, and for a registration on the unexpired token it consumes or the stack it is
bound to), the tier change on the profile (conditional on the tier it was read with)
and the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder.audit import AuditEvent
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import error_code, from_item, to_attr, transact, update_parts

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

PENDING, CONNECTED = "pending", "connected"
BY_EXTERNAL_ID_INDEX = "byExternalId"
CONNECTION_FIELDS = (
    "roleArn",
    "accountId",
    "region",
    "resourcePrefix",
    "clusterArn",
    "subnetIds",
    "securityGroupId",
    "templateVersion",
    "stackId",
    "connectedAt",
    "connectedVia",
    "registrationStackId",
    "registrationPhysicalId",
)
TOKEN_FIELDS = ("registrationTokenHash", "registrationTokenExpiresAt")


@dataclass(frozen=True)
class RegistrationToken:
    """A registration token as stored: its SHA-256 (hex) and expiry (epoch seconds)."""

    digest: str
    expires_at: int


@dataclass(frozen=True)
class RegistrationProof:
    """What a registration's connect write is conditioned on.

    `token_digest` set: the write consumes that unexpired token (a Create, or an Update
    of a stack not bound yet) and binds `stack_id`; unset: the item must already be
    bound to `stack_id` (an Update of the registering stack).
    """

    stack_id: str
    physical_id: str
    token_digest: str | None
    now: int


class AccountChanged(Exception):
    """The account item is no longer in the state it was read or validated in."""


class TierChanged(Exception):
    """The profile's tier changed between reading it and writing the new one."""


class AccountsRepository:
    def __init__(
        self, client: DynamoDBClient, table: str, *, profiles_table: str, audit: AuditLog
    ) -> None:
        self._client = client
        self._table = table
        self._profiles = profiles_table
        self._audit = audit

    def get(self, user_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"userId": {"S": user_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def find_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        """The one item holding this External ID, or None (also if, impossibly, two do)."""
        response = self._client.query(
            TableName=self._table,
            IndexName=BY_EXTERNAL_ID_INDEX,
            KeyConditionExpression="externalId = :id",
            ExpressionAttributeValues={":id": {"S": external_id}},
            Limit=2,
        )
        items = response.get("Items", [])
        if len(items) > 1:
            logger.error("an External ID is held by more than one user; refusing it")
            return None
        # The index is eventually consistent: read the item itself before acting on it.
        return self.get(from_item(items[0])["userId"]) if items else None

    def create_pending(
        self, user_id: str, external_id: str, now_iso: str, token: RegistrationToken
    ) -> bool:
        """False if the user already has an item (another request made it first)."""
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "userId": {"S": user_id},
                    "externalId": {"S": external_id},
                    "status": {"S": PENDING},
                    "createdAt": {"S": now_iso},
                    "registrationTokenHash": {"S": token.digest},
                    "registrationTokenExpiresAt": {"N": str(token.expires_at)},
                },
                ConditionExpression="attribute_not_exists(userId)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def issue_token(self, user_id: str, token: RegistrationToken) -> None:
        """Replace the user's registration token (only the newest Launch Stack link works)."""
        self._client.update_item(
            TableName=self._table,
            Key={"userId": {"S": user_id}},
            UpdateExpression="SET registrationTokenHash = :hash, registrationTokenExpiresAt = :exp",
            ConditionExpression="attribute_exists(userId)",
            ExpressionAttributeValues={
                ":hash": {"S": token.digest},
                ":exp": {"N": str(token.expires_at)},
            },
        )

    def rotate(
        self,
        user_id: str,
        old: str,
        new: str,
        now_iso: str,
        audit: AuditEvent,
        token: RegistrationToken,
    ) -> None:
        """Replace a pending External ID; AccountChanged if it was connected meanwhile."""
        self._transact(
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"userId": {"S": user_id}},
                        "UpdateExpression": "SET externalId = :new, rotatedAt = :now, "
                        "registrationTokenHash = :hash, registrationTokenExpiresAt = :exp",
                        "ConditionExpression": "externalId = :old AND #status = :pending",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":new": {"S": new},
                            ":old": {"S": old},
                            ":now": {"S": now_iso},
                            ":pending": {"S": PENDING},
                            ":hash": {"S": token.digest},
                            ":exp": {"N": str(token.expires_at)},
                        },
                    }
                },
            ],
            audit,
        )

    def connect(
        self,
        user_id: str,
        external_id: str,
        connection: dict[str, Any],
        *,
        tier_change: tuple[str, str] | None,
        audit: AuditEvent,
        registration: RegistrationProof | None = None,
    ) -> None:
        """Store the validated connection, change the tier, write the audit record.

        Conditioned on the External ID it was validated with and on the item being
        pending or connected to the same account, so that of two concurrent connects
        for one user only one wins; a registration also on its proof (the token it
        consumes, removed in the same write, or the stack the item is bound to).
        """
        fields = {**connection, "status": CONNECTED}
        if registration is not None:
            fields["registrationStackId"] = registration.stack_id
            fields["registrationPhysicalId"] = registration.physical_id
        update, names, values = update_parts(fields)
        names.update({"#ext": "externalId", "#st": "status", "#acct": "accountId"})
        values.update(
            {
                ":ext": {"S": external_id},
                ":pendingState": {"S": PENDING},
                ":thisAccount": {"S": str(connection["accountId"])},
            }
        )
        condition = "#ext = :ext AND (#st = :pendingState OR #acct = :thisAccount)"
        if registration is not None and registration.token_digest is not None:
            names.update({"#tok": "registrationTokenHash", "#tokExp": "registrationTokenExpiresAt"})
            values.update(
                {":tok": {"S": registration.token_digest}, ":now": {"N": str(registration.now)}}
            )
            condition += " AND #tok = :tok AND #tokExp > :now"
            update += " REMOVE #tok, #tokExp"
        elif registration is not None:
            names["#bound"] = "registrationStackId"
            values[":bound"] = {"S": registration.stack_id}
            values[":connectedState"] = {"S": CONNECTED}
            condition += " AND #bound = :bound AND #st = :connectedState"
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"userId": {"S": user_id}},
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if tier_change:
            items.append(self._tier_update(user_id, *tier_change))
        self._transact(items, audit)

    def disconnect(
        self,
        user_id: str,
        *,
        account_id: str,
        tier_change: tuple[str, str] | None,
        audit: AuditEvent,
    ) -> None:
        """Forget the connection (the External ID stays, pending: relaunching the stack
        connects again). AccountChanged if that account is no longer the connected one."""
        names = {"#status": "status", "#account": "accountId"}
        removed = []
        for index, field in enumerate(CONNECTION_FIELDS):
            names[f"#r{index}"] = field
            removed.append(f"#r{index}")
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"userId": {"S": user_id}},
                    "UpdateExpression": f"SET #status = :pending REMOVE {', '.join(removed)}",
                    "ConditionExpression": "#status = :connected AND #account = :account",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        ":pending": {"S": PENDING},
                        ":connected": {"S": CONNECTED},
                        ":account": {"S": account_id},
                    },
                }
            }
        ]
        if tier_change:
            items.append(self._tier_update(user_id, *tier_change))
        self._transact(items, audit)

    def _tier_update(self, user_id: str, old: str, new: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._profiles,
                "Key": {"userId": {"S": user_id}},
                "UpdateExpression": "SET #tier = :new",
                "ConditionExpression": "#tier = :old",
                "ExpressionAttributeNames": {"#tier": "tier"},
                "ExpressionAttributeValues": {":new": to_attr(new), ":old": to_attr(old)},
            }
        }

    def _transact(self, items: list[dict[str, Any]], audit: AuditEvent) -> None:
        """The account item, the tier change if any, then the audit record."""
        cancelled = transact(self._client, [*items, self._audit.transaction_item(audit)])
        if cancelled is None:
            return
        if cancelled.failed(0):
            raise AccountChanged() from None
        if cancelled.failed(1) and len(cancelled.codes) == 3:
            raise TierChanged() from None
        raise cancelled.error
