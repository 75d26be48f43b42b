"""Enterprise SSO items: an organisation's SSO settings, its e-mail domain claims, its
cached IAM Identity Center client, and each member's device-flow session.

They live in the organizations table (pk `organizationId`, sk `item`, TTL `purgeAt`):
the settings and the client in the organisation's own partition, beside its `org`,
`member#` and `invitation#` items; a domain claim and a member's session under partition
values no organisation id can take (they start with `#`; organisation ids are UUIDs):

| organizationId       | item                 | holds |
|----------------------|----------------------|-------|
| `<orgId>`            | `sso`                | providerName, emailDomains, metadataUrl, entityId, startUrl, ssoRegion, accountId, permissionSetRole, updatedAt, updatedBy, version |
| `<orgId>`            | `sso-client#<region>`| clientId, clientSecret (KMS ciphertext), clientSecretExpiresAt, expiresAt, purgeAt (TTL = expiresAt) |
| `#domain#<domain>`   | `claim`              | owner (the organisation id), claimedAt: one organisation per domain, made unique by the key |
| `#user#<userId>`     | `sso-session`        | owner (the organisation id), status (pending/active), deviceCode (ciphertext), interval, nextPollAt, accessToken (ciphertext), expiresAt (the code's, then the token's expiry), purgeAt (TTL = expiresAt) |

In the `#` partitions the key attribute `organizationId` holds the partition value, so
the organisation a claim or a session belongs to is stored as `owner`; callers see it as
`organizationId`, as before. DynamoDB's TTL deletes expired sessions and clients (within
days: readers compare `expiresAt` themselves).

Saving settings is one transaction: the settings item (conditioned on the version read,
so two admins' PUTs cannot interleave), a claim Put per new domain (conditioned on the
domain being free or already this organisation's), a claim Delete per dropped domain, and
whatever items the caller adds (the organisation's audit record).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_builder.repositories.dynamo import error_code, from_item, to_item, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITION, SORT, TTL = "organizationId", "item", "purgeAt"
SETTINGS = "sso"
CLAIM = "claim"
SESSION = "sso-session"
# Where a `#` partition's item keeps the organisation it belongs to.
OWNER = "owner"


def domain_partition(domain: str) -> str:
    return f"#domain#{domain}"


def user_partition(user_id: str) -> str:
    return f"#user#{user_id}"


def _client_item(region: str) -> str:
    return f"sso-client#{region}"


def _owned(values: dict[str, Any]) -> dict[str, Any]:
    """An item of a `#` partition as stored: its organisation as `owner`, its TTL."""
    stored = {key: value for key, value in values.items() if key != PARTITION}
    if values.get(PARTITION) is not None:
        stored[OWNER] = values[PARTITION]
    return _expiring(stored)


def _expiring(values: dict[str, Any]) -> dict[str, Any]:
    """TTL: the table's attribute, at the item's own expiry."""
    if values.get("expiresAt") is not None:
        return {**values, TTL: int(values["expiresAt"])}
    return values


class DomainClaimed(Exception):
    """A domain is another organisation's (`domain` names it)."""

    def __init__(self, domain: str) -> None:
        super().__init__(domain)
        self.domain = domain


class SettingsChanged(Exception):
    """The settings changed since they were read (another admin saved meanwhile)."""


class SsoRepository:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        """`table`: the organizations table (ORGANIZATIONS_TABLE)."""
        self._client = client
        self._table = table

    @staticmethod
    def _key(partition: str, sort: str) -> dict[str, Any]:
        return {PARTITION: {"S": partition}, SORT: {"S": sort}}

    def _get(self, partition: str, sort: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(partition, sort), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        values = from_item(item)
        values.pop(SORT, None)
        values.pop(TTL, None)
        if partition.startswith("#"):
            values.pop(PARTITION, None)
            owner = values.pop(OWNER, None)
            if owner is not None:
                values[PARTITION] = owner
        return values

    # ---- settings and domain claims -------------------------------------------------

    def settings(self, organization_id: str) -> dict[str, Any] | None:
        return self._get(organization_id, SETTINGS)

    def domain_owner(self, domain: str) -> str | None:
        """The organisation that claimed `domain` (what the sign-up triggers ask)."""
        claim = self._get(domain_partition(domain), CLAIM)
        return str(claim[PARTITION]) if claim and claim.get(PARTITION) else None

    def save_settings(
        self,
        organization_id: str,
        settings: dict[str, Any],
        *,
        previous: dict[str, Any] | None,
        now_iso: str,
        extra_items: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Store the settings and claim their domains in one transaction; the stored item.

        DomainClaimed names a domain another organisation holds; SettingsChanged if the
        settings are not `previous` any more. Nothing is written either way.
        """
        version = int(previous["version"]) if previous else 0
        stored = {**settings, PARTITION: organization_id, "version": version + 1}
        new_domains = list(stored["emailDomains"])
        old_domains = list(previous["emailDomains"]) if previous else []
        condition = "#v = :v" if previous else f"attribute_not_exists({PARTITION})"
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {**to_item(stored), **self._key(organization_id, SETTINGS)},
                    "ConditionExpression": condition,
                    **(
                        {
                            "ExpressionAttributeNames": {"#v": "version"},
                            "ExpressionAttributeValues": {":v": {"N": str(version)}},
                        }
                        if previous
                        else {}
                    ),
                }
            }
        ]
        claimed = [d for d in new_domains if d not in old_domains]
        for domain in claimed:
            items.append(self._claim(organization_id, domain, now_iso))
        for domain in old_domains:
            if domain not in new_domains:
                items.append(self._release(organization_id, domain))
        items.extend(extra_items)
        cancelled = transact(self._client, items)
        if cancelled is not None:
            if cancelled.failed(0):
                raise SettingsChanged()
            for index, domain in enumerate(claimed, start=1):
                if cancelled.failed(index):
                    raise DomainClaimed(domain)
            raise cancelled.error
        return stored

    def delete_settings(
        self,
        organization_id: str,
        previous: dict[str, Any],
        *,
        extra_items: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Forget the settings and release every domain (SettingsChanged if they moved)."""
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": self._key(organization_id, SETTINGS),
                    "ConditionExpression": "#v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(int(previous["version"]))}},
                }
            }
        ]
        items += [self._release(organization_id, d) for d in previous["emailDomains"]]
        items.extend(extra_items)
        cancelled = transact(self._client, items)
        if cancelled is not None:
            if cancelled.failed(0):
                raise SettingsChanged()
            raise cancelled.error

    def _claim(self, organization_id: str, domain: str, now_iso: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **self._key(domain_partition(domain), CLAIM),
                    OWNER: {"S": organization_id},
                    "claimedAt": {"S": now_iso},
                },
                "ConditionExpression": f"attribute_not_exists({PARTITION}) OR #owner = :org",
                "ExpressionAttributeNames": {"#owner": OWNER},
                "ExpressionAttributeValues": {":org": {"S": organization_id}},
            }
        }

    def _release(self, organization_id: str, domain: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": self._key(domain_partition(domain), CLAIM),
                "ConditionExpression": f"attribute_not_exists({PARTITION}) OR #owner = :org",
                "ExpressionAttributeNames": {"#owner": OWNER},
                "ExpressionAttributeValues": {":org": {"S": organization_id}},
            }
        }

    # ---- the IAM Identity Center client (per organisation and SSO region) ------------

    def sso_client(self, organization_id: str, region: str) -> dict[str, Any] | None:
        return self._get(organization_id, _client_item(region))

    def put_sso_client(self, organization_id: str, region: str, values: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={**to_item(_expiring(values)), **self._key(organization_id, _client_item(region))},
        )

    def delete_sso_clients(self, organization_id: str, regions: Sequence[str]) -> None:
        for region in regions:
            self._client.delete_item(
                TableName=self._table, Key=self._key(organization_id, _client_item(region))
            )

    # ---- a member's device-flow session ------------------------------------------

    def session(self, user_id: str) -> dict[str, Any] | None:
        return self._get(user_partition(user_id), SESSION)

    def _session_item(self, user_id: str, values: dict[str, Any]) -> dict[str, Any]:
        return {**to_item(_owned(values)), **self._key(user_partition(user_id), SESSION)}

    def put_session(self, user_id: str, values: dict[str, Any]) -> None:
        self._client.put_item(TableName=self._table, Item=self._session_item(user_id, values))

    def activate_session(self, user_id: str, *, device_code: str, values: dict[str, Any]) -> bool:
        """Replace the pending session that polled with the active one; False if the
        member started another flow (or dropped this one) meanwhile."""
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._session_item(user_id, values),
                ConditionExpression="deviceCode = :code",
                ExpressionAttributeValues={":code": {"S": device_code}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update_poll(
        self, user_id: str, *, device_code: str, next_poll_at: float, interval: int
    ) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(user_partition(user_id), SESSION),
                UpdateExpression="SET nextPollAt = :next, #interval = :interval",
                ConditionExpression="deviceCode = :code",
                ExpressionAttributeNames={"#interval": "interval"},
                ExpressionAttributeValues={
                    ":next": {"N": str(next_poll_at)},
                    ":interval": {"N": str(interval)},
                    ":code": {"S": device_code},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def delete_session(self, user_id: str) -> None:
        self._client.delete_item(
            TableName=self._table, Key=self._key(user_partition(user_id), SESSION)
        )


__all__ = [
    "DomainClaimed",
    "SettingsChanged",
    "SsoRepository",
    "domain_partition",
    "user_partition",
]
