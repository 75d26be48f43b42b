"""The organizations table: an organisation, its members and its invitations.

One partition per organisation (pk `organizationId`): sk `org` (name, allowedRegions,
defaultRole, `admins`: how many members are admins), `member#<userId>` (role, email,
joinedAt) and `invitation#<invitationId>` (email, role, expiresAt; found by id through
the sparse index `byInvitation`). A member's profile mirrors their organisation, role and
tier (`enterprise`), so every request learns the caller's role in one read.

Every membership change is ONE transaction: the member item, the profile, the admin
count when an admin comes or goes (conditioned above one when one goes: the last admin
stays) and the audit records. The profile's condition keeps a user in at most one
organisation; no read decides anything a concurrent request could change meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_builder.audit import AuditEvent
from agent_builder.errors import (
    AlreadyInOrganization,
    InvitationExpired,
    InvitationNotFound,
    LastAdmin,
    MemberNotFound,
    NotInOrganization,
)
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.dynamo import (
    Cancelled,
    from_item,
    to_attr,
    to_item,
    transact,
    update_parts,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ORG = "org"
MEMBER = "member#"
INVITATION = "invitation#"
BY_INVITATION = "byInvitation"
ENTERPRISE = "enterprise"
# The profile attribute naming the organisation whose SAML IdP asserted its e-mail.
EMAIL_ASSERTED_BY = "emailAssertedBy"


def _key(organization_id: str, item: str) -> dict[str, Any]:
    return {"organizationId": {"S": organization_id}, "item": {"S": item}}


class OrganizationsRepository:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        profiles_table: str,
        audit: AuditLog,
        accounts_table: str | None = None,
    ) -> None:
        """`accounts_table`: where a leaving member's own connection is checked (the API);
        the sign-up triggers, which only add members, have none."""
        self._client = client
        self._table = table
        self._profiles = profiles_table
        self._accounts_table = accounts_table
        self._audit = audit

    @property
    def _accounts(self) -> str:
        if not self._accounts_table:
            raise RuntimeError("this repository was built without the accounts table")
        return self._accounts_table

    # ---- reads ------------------------------------------------------------------------

    def _get(self, organization_id: str, item: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=_key(organization_id, item), ConsistentRead=True
        )
        found = response.get("Item")
        return from_item(found) if found else None

    def get(self, organization_id: str) -> dict[str, Any] | None:
        return self._get(organization_id, ORG)

    def member(self, organization_id: str, user_id: str) -> dict[str, Any] | None:
        return self._get(organization_id, MEMBER + user_id)

    def account_status(self, user_id: str) -> str | None:
        """The status of the user's own connected account (Tier 2), if they have one."""
        response = self._client.get_item(
            TableName=self._accounts,
            Key={"userId": {"S": user_id}},
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
            ConsistentRead=True,
        )
        status = response.get("Item", {}).get("status", {}).get("S")
        return str(status) if status else None

    def invitation(self, invitation_id: str) -> dict[str, Any] | None:
        """An invitation by id alone (the invitee is not a member yet)."""
        response = self._client.query(
            TableName=self._table,
            IndexName=BY_INVITATION,
            KeyConditionExpression="invitationId = :id",
            ExpressionAttributeValues={":id": {"S": invitation_id}},
            Limit=1,
        )
        items = response.get("Items", [])
        return from_item(items[0]) if items else None

    def page(
        self, organization_id: str, kind: str, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the organisation's members or invitations (`kind` is the sk
        prefix) and the id to continue after."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "organizationId = :org AND begins_with(#item, :kind)",
            "ExpressionAttributeNames": {"#item": "item"},
            "ExpressionAttributeValues": {":org": {"S": organization_id}, ":kind": {"S": kind}},
            "Limit": limit,
            "ConsistentRead": True,
        }
        if after:
            params["ExclusiveStartKey"] = _key(organization_id, kind + after)
        response = self._client.query(**params)
        last = response.get("LastEvaluatedKey")
        return [from_item(item) for item in response.get("Items", [])], (
            last["item"]["S"].removeprefix(kind) if last else None
        )

    # ---- transaction items ------------------------------------------------------------

    def _join(
        self,
        user_id: str,
        organization_id: str,
        role: str,
        now_iso: str,
        *,
        email: str | None = None,
    ) -> dict[str, Any]:
        """The profile becomes the member's: only if it is in no organisation yet. With
        `email`, the profile's address too (an SSO sign-up's, see `join_through_sso`),
        marked as asserted by this organisation's IdP (`emailAssertedBy`): the platform
        verified no such address, so it opens no other organisation's invitation."""
        names = {
            "#org": "organizationId",
            "#role": "role",
            "#tier": "tier",
            "#created": "createdAt",
        }
        values: dict[str, Any] = {
            ":org": {"S": organization_id},
            ":role": {"S": role},
            ":tier": {"S": ENTERPRISE},
            ":now": {"S": now_iso},
        }
        update = (
            "SET #org = :org, #role = :role, #tier = :tier, "
            "#created = if_not_exists(#created, :now)"
        )
        if email:
            names["#email"] = "email"
            names["#asserted"] = EMAIL_ASSERTED_BY
            values[":email"] = {"S": email}
            update += ", #email = :email, #asserted = :org"
        return {
            "Update": {
                "TableName": self._profiles,
                "Key": {"userId": {"S": user_id}},
                "UpdateExpression": update,
                "ConditionExpression": "attribute_not_exists(#org)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _admins(self, organization_id: str, delta: int) -> dict[str, Any]:
        """Count an admin in or out; out only while another admin stays."""
        values: dict[str, Any] = {":delta": {"N": str(delta)}}
        condition = "attribute_exists(organizationId)"
        if delta < 0:
            condition += " AND admins > :one"
            values[":one"] = {"N": "1"}
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(organization_id, ORG),
                "UpdateExpression": "ADD admins :delta",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }

    def _member_put(self, member: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": to_item({**member, "item": MEMBER + member["userId"]}),
                "ConditionExpression": "attribute_not_exists(organizationId)",
            }
        }

    def _run(self, items: list[dict[str, Any]], audit: AuditEvent) -> Cancelled | None:
        return transact(self._client, [*items, *self._audit.transaction_items(audit)])

    # ---- writes -----------------------------------------------------------------------

    def create(
        self, organization: dict[str, Any], admin: dict[str, Any], audit: AuditEvent
    ) -> None:
        """The organisation with its founder as its first admin."""
        org_id = organization["organizationId"]
        cancelled = self._run(
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item({**organization, "item": ORG, "admins": 1}),
                        "ConditionExpression": "attribute_not_exists(organizationId)",
                    }
                },
                self._member_put(admin),
                self._join(admin["userId"], org_id, admin["role"], admin["joinedAt"]),
            ],
            audit,
        )
        if cancelled is None:
            return
        if cancelled.failed(2):
            raise AlreadyInOrganization(
                "you are already a member of an organisation: leave it first"
            ) from None
        raise cancelled.error

    def update(self, organization_id: str, fields: dict[str, Any], audit: AuditEvent) -> None:
        update, names, values = update_parts(fields)
        cancelled = self._run(
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(organization_id, ORG),
                        "UpdateExpression": update,
                        "ConditionExpression": "attribute_exists(organizationId)",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            ],
            audit,
        )
        if cancelled is None:
            return
        if cancelled.failed(0):
            raise NotInOrganization("the organisation no longer exists") from None
        raise cancelled.error

    def invite(self, invitation: dict[str, Any], audit: AuditEvent) -> None:
        org_id = invitation["organizationId"]
        cancelled = self._run(
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(
                            {**invitation, "item": INVITATION + invitation["invitationId"]}
                        ),
                        "ConditionExpression": "attribute_not_exists(organizationId)",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": _key(org_id, ORG),
                        "ConditionExpression": "attribute_exists(organizationId)",
                    }
                },
            ],
            audit,
        )
        if cancelled is None:
            return
        if cancelled.failed(1):
            raise NotInOrganization("the organisation no longer exists") from None
        raise cancelled.error

    def revoke(self, organization_id: str, invitation_id: str, audit: AuditEvent) -> None:
        cancelled = self._run(
            [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _key(organization_id, INVITATION + invitation_id),
                        "ConditionExpression": "attribute_exists(organizationId)",
                    }
                }
            ],
            audit,
        )
        if cancelled is None:
            return
        if cancelled.failed(0):
            raise InvitationNotFound("no invitation with this id") from None
        raise cancelled.error

    def accept(
        self, invitation: dict[str, Any], member: dict[str, Any], now_epoch: int, audit: AuditEvent
    ) -> None:
        """The invitee becomes a member and the invitation is used up, in one transaction
        (conditioned on the invitation still being there and unexpired)."""
        org_id = invitation["organizationId"]
        items = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key(org_id, INVITATION + invitation["invitationId"]),
                    "ConditionExpression": "attribute_exists(organizationId) AND expiresAtEpoch > :now",
                    "ExpressionAttributeValues": {":now": {"N": str(now_epoch)}},
                }
            },
            self._member_put(member),
            self._join(member["userId"], org_id, member["role"], member["joinedAt"]),
        ]
        if member["role"] == "admin":
            items.append(self._admins(org_id, +1))
        cancelled = self._run(items, audit)
        if cancelled is None:
            return
        if cancelled.failed(2):
            raise AlreadyInOrganization(
                "you are already a member of an organisation: leave it before accepting"
            ) from None
        if cancelled.failed(0):
            raise InvitationExpired(
                "this invitation has expired or was revoked: ask an admin to invite you again"
            ) from None
        if cancelled.failed(1) or (len(items) > 3 and cancelled.failed(3)):
            raise InvitationNotFound(
                "the organisation of this invitation no longer exists"
            ) from None
        raise cancelled.error

    def join_through_sso(self, member: dict[str, Any], audit: AuditEvent) -> bool:
        """A user's first sign-in through the organisation's SAML IdP makes them a member:
        member Put + profile (organisation, role, tier enterprise, created if missing, the
        member's `email` if given) + the admin count for an admin + the audit records, one
        transaction, conditioned on the organisation existing and the profile being in no
        organisation. False if they are a member already (Cognito delivered the trigger
        again): nothing changed. AlreadyInOrganization if the profile is another
        organisation's; NotInOrganization if the organisation is gone."""
        org_id = member["organizationId"]
        items = [
            self._member_put(member),
            self._join(
                member["userId"],
                org_id,
                member["role"],
                member["joinedAt"],
                email=member.get("email"),
            ),
            self._admins(org_id, +1)
            if member["role"] == "admin"
            else {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": _key(org_id, ORG),
                    "ConditionExpression": "attribute_exists(organizationId)",
                }
            },
        ]
        cancelled = self._run(items, audit)
        if cancelled is None:
            return True
        if cancelled.failed(2):
            raise NotInOrganization("the organisation no longer exists") from None
        if cancelled.failed(0):
            return False
        if cancelled.failed(1):
            raise AlreadyInOrganization(
                "you are already a member of another organisation: leave it first"
            ) from None
        raise cancelled.error

    def change_role(
        self, organization_id: str, user_id: str, old: str, new: str, audit: AuditEvent
    ) -> None:
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(organization_id, MEMBER + user_id),
                    "UpdateExpression": "SET #role = :new",
                    "ConditionExpression": "#role = :old",
                    "ExpressionAttributeNames": {"#role": "role"},
                    "ExpressionAttributeValues": {":new": {"S": new}, ":old": {"S": old}},
                }
            },
            {
                "Update": {
                    "TableName": self._profiles,
                    "Key": {"userId": {"S": user_id}},
                    "UpdateExpression": "SET #role = :new",
                    "ConditionExpression": "#org = :org",
                    "ExpressionAttributeNames": {"#role": "role", "#org": "organizationId"},
                    "ExpressionAttributeValues": {
                        ":new": {"S": new},
                        ":org": {"S": organization_id},
                    },
                }
            },
        ]
        if old == "admin" and new != "admin":
            items.append(self._admins(organization_id, -1))
        elif new == "admin" and old != "admin":
            items.append(self._admins(organization_id, +1))
        cancelled = self._run(items, audit)
        if cancelled is None:
            return
        if len(items) > 2 and cancelled.failed(2) and old == "admin":
            raise LastAdmin(
                "this is the organisation's last admin: make another member admin first"
            ) from None
        if cancelled.failed(0) or cancelled.failed(1):
            raise MemberNotFound("no such member (or their role changed meanwhile)") from None
        raise cancelled.error

    def remove(
        self,
        organization_id: str,
        user_id: str,
        role: str,
        *,
        connected_account: bool,
        audit: AuditEvent,
    ) -> bool:
        """The member leaves: their profile returns to `personal` if they have their own
        connected account (checked in the same transaction), else to `freemium`. False
        when that account was connected or disconnected meanwhile (nothing written)."""
        status = {"#status": "status"}
        connected = {":connected": {"S": "connected"}}
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key(organization_id, MEMBER + user_id),
                    "ConditionExpression": "#role = :role",
                    "ExpressionAttributeNames": {"#role": "role"},
                    "ExpressionAttributeValues": {":role": {"S": role}},
                }
            },
            {
                "Update": {
                    "TableName": self._profiles,
                    "Key": {"userId": {"S": user_id}},
                    "UpdateExpression": "SET #tier = :tier REMOVE #org, #role",
                    "ConditionExpression": "#org = :org",
                    "ExpressionAttributeNames": {
                        "#tier": "tier",
                        "#org": "organizationId",
                        "#role": "role",
                    },
                    "ExpressionAttributeValues": {
                        ":tier": to_attr("personal" if connected_account else "freemium"),
                        ":org": {"S": organization_id},
                    },
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self._accounts,
                    "Key": {"userId": {"S": user_id}},
                    "ConditionExpression": "#status = :connected"
                    if connected_account
                    else "attribute_not_exists(#status) OR #status <> :connected",
                    "ExpressionAttributeNames": status,
                    "ExpressionAttributeValues": connected,
                }
            },
        ]
        if role == "admin":
            items.append(self._admins(organization_id, -1))
        cancelled = self._run(items, audit)
        if cancelled is None:
            return True
        if role == "admin" and cancelled.failed(3):
            raise LastAdmin(
                "this is the organisation's last admin: make another member admin first"
            ) from None
        if cancelled.failed(0) or cancelled.failed(1):
            raise MemberNotFound("no such member (or their role changed meanwhile)") from None
        if cancelled.failed(2):
            return False
        raise cancelled.error
