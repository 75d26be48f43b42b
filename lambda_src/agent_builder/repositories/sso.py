"""Enterprise SSO items: an organisation's SSO settings, its e-mail domain claims, its
cached IAM Identity Center client, and each member's device-flow session.

The items live in a table passed in with its key attribute names (`ItemKeys`), so any
table with a string partition key, a string sort key and TTL on `expiresAt` can host
them: the organisations table once it exists; until then the usage table (`userId`,
`period`, TTL `expiresAt`), under partition keys no Cognito `sub` can take (they start
with `#`, like the usage table's `#platform`):

| partition            | sort                 | holds |
|----------------------|----------------------|-------|
| `#org#<orgId>`       | `sso`                | providerName, emailDomains, metadataUrl, entityId, startUrl, ssoRegion, accountId, permissionSetRole, updatedAt, updatedBy, version |
| `#domain#<domain>`   | `claim`              | organizationId, claimedAt: one organisation per domain, made unique by the key |
| `#org#<orgId>`       | `sso-client#<region>`| clientId, clientSecret (KMS ciphertext), clientSecretExpiresAt, expiresAt (TTL) |
| `<userId>`           | `sso-session`        | organizationId, status (pending/active), deviceCode (ciphertext), interval, nextPollAt, accessToken (ciphertext), expiresAt (TTL: the code's, then the token's expiry) |

Saving settings is one transaction: the settings item (conditioned on the version read,
so two admins' PUTs cannot interleave), a claim Put per new domain (conditioned on the
domain being free or already this organisation's), a claim Delete per dropped domain, and
whatever items the caller adds (the organisation's audit record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_builder.repositories.dynamo import error_code, from_item, to_item, transact

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SETTINGS = "sso"
CLAIM = "claim"
SESSION = "sso-session"


@dataclass(frozen=True)
class ItemKeys:
    """The host table's key attribute names."""

    partition: str
    sort: str


USAGE_TABLE_KEYS = ItemKeys("userId", "period")


def org_partition(organization_id: str) -> str:
    return f"#org#{organization_id}"


def domain_partition(domain: str) -> str:
    return f"#domain#{domain}"


class DomainClaimed(Exception):
    """A domain is another organisation's (`domain` names it)."""

    def __init__(self, domain: str) -> None:
        super().__init__(domain)
        self.domain = domain


class SettingsChanged(Exception):
    """The settings changed since they were read (another admin saved meanwhile)."""


class SsoRepository:
    def __init__(self, client: DynamoDBClient, table: str, keys: ItemKeys = USAGE_TABLE_KEYS):
        self._client = client
        self._table = table
        self._keys = keys

    def _key(self, partition: str, sort: str) -> dict[str, Any]:
        return {self._keys.partition: {"S": partition}, self._keys.sort: {"S": sort}}

    def _get(self, partition: str, sort: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(partition, sort), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        values = from_item(item)
        values.pop(self._keys.partition, None)
        values.pop(self._keys.sort, None)
        return values

    # ---- settings and domain claims -------------------------------------------------

    def settings(self, organization_id: str) -> dict[str, Any] | None:
        return self._get(org_partition(organization_id), SETTINGS)

    def domain_owner(self, domain: str) -> str | None:
        """The organisation that claimed `domain` (what the pre sign-up trigger asks)."""
        claim = self._get(domain_partition(domain), CLAIM)
        return str(claim["organizationId"]) if claim else None

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
        stored = {**settings, "organizationId": organization_id, "version": version + 1}
        new_domains = list(stored["emailDomains"])
        old_domains = list(previous["emailDomains"]) if previous else []
        condition = "#v = :v" if previous else f"attribute_not_exists({self._keys.partition})"
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **self._key(org_partition(organization_id), SETTINGS),
                        **to_item(stored),
                    },
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
                    "Key": self._key(org_partition(organization_id), SETTINGS),
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
                    "organizationId": {"S": organization_id},
                    "claimedAt": {"S": now_iso},
                },
                "ConditionExpression": f"attribute_not_exists({self._keys.partition}) "
                "OR organizationId = :org",
                "ExpressionAttributeValues": {":org": {"S": organization_id}},
            }
        }

    def _release(self, organization_id: str, domain: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": self._key(domain_partition(domain), CLAIM),
                "ConditionExpression": f"attribute_not_exists({self._keys.partition}) "
                "OR organizationId = :org",
                "ExpressionAttributeValues": {":org": {"S": organization_id}},
            }
        }

    # ---- the IAM Identity Center client (per organisation and SSO region) ------------

    def sso_client(self, organization_id: str, region: str) -> dict[str, Any] | None:
        return self._get(org_partition(organization_id), f"sso-client#{region}")

    def put_sso_client(self, organization_id: str, region: str, values: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key(org_partition(organization_id), f"sso-client#{region}"),
                **to_item(values),
            },
        )

    def delete_sso_clients(self, organization_id: str, regions: Sequence[str]) -> None:
        for region in regions:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(org_partition(organization_id), f"sso-client#{region}"),
            )

    # ---- a member's device-flow session ------------------------------------------

    def session(self, user_id: str) -> dict[str, Any] | None:
        return self._get(user_id, SESSION)

    def put_session(self, user_id: str, values: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table, Item={**self._key(user_id, SESSION), **to_item(values)}
        )

    def activate_session(self, user_id: str, *, device_code: str, values: dict[str, Any]) -> bool:
        """Replace the pending session that polled with the active one; False if the
        member started another flow (or dropped this one) meanwhile."""
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self._table,
                Item={**self._key(user_id, SESSION), **to_item(values)},
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
                Key=self._key(user_id, SESSION),
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
        self._client.delete_item(TableName=self._table, Key=self._key(user_id, SESSION))


__all__ = [
    "USAGE_TABLE_KEYS",
    "DomainClaimed",
    "ItemKeys",
    "SettingsChanged",
    "SsoRepository",
    "domain_partition",
    "org_partition",
]
