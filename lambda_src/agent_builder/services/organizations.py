"""Organisations (Tier 3): found one, rename it, invite, accept, change roles, remove, leave.

Who may call what is the policy table's (agent_builder/access.py), checked before these
run; here go the rules about the members themselves: the last admin stays, a user is in
one organisation at most, an invitation is accepted only by the verified e-mail it was
sent to (the profile's: an access token carries no e-mail) and only before it expires.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import pagination, timeutil
from agent_builder.access import ADMIN, ROLES, Membership
from agent_builder.audit import REFUSED, AuditEvent
from agent_builder.errors import (
    InvalidInput,
    InvitationExpired,
    InvitationNotFound,
    LaunchConflict,
    MemberNotFound,
    NotInOrganization,
    OrganizationCreationClosed,
    RegionNotAllowed,
)
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.organizations import (
    EMAIL_ASSERTED_BY,
    INVITATION,
    MEMBER,
    OrganizationsRepository,
)
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.services.caller import Caller
from agent_builder.validation import is_aws_region, valid_id

logger = Logger(child=True)

INVITATION_LIFETIME = timedelta(days=7)
# An expired invitation answers "expired" (410) for this long, then TTL removes it (404).
INVITATION_PURGE_AFTER = timedelta(days=30)
MAX_ORG_NAME = 64
MAX_ALLOWED_REGIONS = 40
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
ORG_FIELDS = ("organizationId", "name", "allowedRegions", "defaultRole", "createdAt")


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if not EMAIL.fullmatch(email):
        raise InvalidInput("email must be an e-mail address")
    return email


def _role(value: str | None) -> str:
    if value not in ROLES:
        raise InvalidInput(f"role must be one of: {', '.join(ROLES)}")
    return value


def member_view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "userId": item["userId"],
        "email": item.get("email"),
        "role": item["role"],
        "joinedAt": item.get("joinedAt"),
    }


class OrganizationService:
    def __init__(
        self,
        organizations: OrganizationsRepository,
        profiles: ProfilesRepository,
        audit: AuditLog,
        *,
        allow_creation: bool,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._orgs = organizations
        self._profiles = profiles
        self._audit = audit
        self._allow_creation = allow_creation
        self._clock = clock

    # ---- the organisation -------------------------------------------------------------

    def _view(self, organization: dict[str, Any], role: str | None) -> dict[str, Any]:
        view = {field: organization.get(field) for field in ORG_FIELDS}
        view["allowedRegions"] = view["allowedRegions"] or None
        # SSO is configured through PUT /org/sso (not routed yet): none until then.
        return view | {"role": role, "sso": organization.get("sso")}

    def _event(self, member: Membership, action: str, **details: Any) -> AuditEvent:
        return AuditEvent(
            member.user_id, action, organization_id=member.organization_id, details=details
        )

    def _organization(self, member: Membership) -> dict[str, Any]:
        organization = self._orgs.get(member.organization_id) if member.organization_id else None
        if organization is None:
            raise NotInOrganization("you are not a member of an organisation")
        return organization

    def create(self, caller: Caller, name: str) -> dict[str, Any]:
        if not self._allow_creation:
            raise OrganizationCreationClosed(
                "the platform's owner has closed the creation of organisations"
            )
        name = _name(name)
        now = timeutil.iso(self._clock())
        org_id = str(uuid.uuid4())
        organization = {
            "organizationId": org_id,
            "name": name,
            "defaultRole": "developer",
            "createdAt": now,
            "createdBy": caller.user_id,
        }
        profile = self._profiles.ensure(caller.user_id, caller.email, now)
        admin = {
            "organizationId": org_id,
            "userId": caller.user_id,
            "role": ADMIN,
            "email": profile.get("email") or caller.email,
            "joinedAt": now,
        }
        self._orgs.create(
            organization,
            admin,
            AuditEvent(
                caller.user_id, "org.create", organization_id=org_id, details={"target": org_id}
            ),
        )
        logger.info("organisation created", organization_id=org_id)
        return self._view(organization, ADMIN)

    def get(self, caller: Caller) -> dict[str, Any]:
        member = caller.membership()
        return self._view(self._organization(member), member.role)

    def update(self, caller: Caller, changes: dict[str, Any]) -> dict[str, Any]:
        member = caller.membership()
        fields: dict[str, Any] = {}
        if "name" in changes:
            fields["name"] = _name(changes["name"])
        if "defaultRole" in changes:
            fields["defaultRole"] = _role(changes["defaultRole"])
        if "allowedRegions" in changes:
            fields["allowedRegions"] = _regions(changes["allowedRegions"])
        if not fields:
            raise InvalidInput("give at least one of: name, allowedRegions, defaultRole")
        assert member.organization_id is not None  # the policy: members only
        self._orgs.update(
            member.organization_id,
            fields,
            self._event(member, "org.update", target=member.organization_id, fields=sorted(fields)),
        )
        return self.get(caller)

    # ---- members ----------------------------------------------------------------------

    def members(self, caller: Caller, limit: int, next_token: str | None) -> dict[str, Any]:
        member = caller.membership()
        after = pagination.decode(next_token, ("userId",))["userId"] if next_token else None
        items, last = self._orgs.page(
            self._organization(member)["organizationId"], MEMBER, limit, after
        )
        return {
            "members": [member_view(item) for item in items],
            "nextToken": pagination.encode({"userId": last}) if last else None,
        }

    def _member(self, member: Membership, user_id: str) -> dict[str, Any]:
        found = (
            self._orgs.member(member.organization_id, user_id)
            if member.organization_id and 0 < len(user_id) <= 128
            else None
        )
        if found is None:
            raise MemberNotFound("no member with this id in your organisation")
        return found

    def set_role(self, caller: Caller, user_id: str, role: str) -> dict[str, Any]:
        member = caller.membership()
        role = _role(role)
        target = self._member(member, user_id)
        if target["role"] != role:
            assert member.organization_id is not None
            self._orgs.change_role(
                member.organization_id,
                user_id,
                target["role"],
                role,
                self._event(
                    member,
                    "member.role_change",
                    target=user_id,
                    role=role,
                    previousRole=target["role"],
                ),
            )
        return member_view({**target, "role": role})

    def remove(self, caller: Caller, user_id: str) -> None:
        """An admin removes a member, or a member removes themselves (leaves)."""
        member = caller.membership()
        target = self._member(member, user_id)
        assert member.organization_id is not None
        action = "member.leave" if user_id == member.user_id else "member.remove"
        for _attempt in range(2):
            connected = self._orgs.account_status(user_id) == "connected"
            tier = "personal" if connected else "freemium"
            if self._orgs.remove(
                member.organization_id,
                user_id,
                target["role"],
                connected_account=connected,
                audit=self._event(member, action, target=user_id, tier=tier),
            ):
                return
        raise LaunchConflict("the member's own AWS account changed meanwhile: try again")

    # ---- invitations ------------------------------------------------------------------

    def invite(self, caller: Caller, email: str, role: str) -> dict[str, Any]:
        member = caller.membership()
        assert member.organization_id is not None
        now = self._clock()
        expires = now + INVITATION_LIFETIME
        invitation = {
            "organizationId": member.organization_id,
            "invitationId": str(uuid.uuid4()),
            "email": normalise_email(email),
            "role": _role(role),
            "invitedBy": member.user_id,
            "createdAt": timeutil.iso(now),
            "expiresAt": timeutil.iso(expires),
            "expiresAtEpoch": timeutil.epoch(expires),
            "purgeAt": timeutil.epoch(expires + INVITATION_PURGE_AFTER),
        }
        self._orgs.invite(
            invitation,
            self._event(member, "invitation.create", target=invitation["invitationId"], role=role),
        )
        return self._invitation_view(invitation, now)

    def _invitation_view(self, item: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            "invitationId": item["invitationId"],
            "email": item["email"],
            "role": item["role"],
            "invitedBy": item.get("invitedBy"),
            "createdAt": item.get("createdAt"),
            "expiresAt": item["expiresAt"],
            "expired": int(item["expiresAtEpoch"]) <= timeutil.epoch(now),
        }

    def invitations(self, caller: Caller, limit: int, next_token: str | None) -> dict[str, Any]:
        member = caller.membership()
        assert member.organization_id is not None
        after = (
            pagination.decode(next_token, ("invitationId",))["invitationId"] if next_token else None
        )
        items, last = self._orgs.page(member.organization_id, INVITATION, limit, after)
        now = self._clock()
        return {
            "invitations": [self._invitation_view(item, now) for item in items],
            "nextToken": pagination.encode({"invitationId": last}) if last else None,
        }

    def revoke(self, caller: Caller, invitation_id: str) -> None:
        member = caller.membership()
        if not valid_id(invitation_id) or member.organization_id is None:
            raise InvitationNotFound("no invitation with this id")
        self._orgs.revoke(
            member.organization_id,
            invitation_id,
            self._event(member, "invitation.revoke", target=invitation_id),
        )

    def accept(self, caller: Caller, invitation_id: str) -> dict[str, Any]:
        """The invitee joins with the invitation's role. Another user's invitation is
        not found (404); the e-mail compared is the verified one of the caller's profile."""
        invitation = self._orgs.invitation(invitation_id) if valid_id(invitation_id) else None
        # The profile's verified e-mail: written at sign-up by the Cognito trigger, or
        # from the token's own claim where it carries one (ProfilesRepository.ensure).
        now = self._clock()
        profile = self._profiles.ensure(caller.user_id, caller.email, timeutil.iso(now))
        email = profile.get("email")
        # An address an organisation's IdP asserted (an SSO user's) stands for them in that
        # organisation only: it opens no other organisation's invitation (an IdP may assert
        # any address of the domains its organisation claimed).
        asserted_by = profile.get(EMAIL_ASSERTED_BY)
        if (
            invitation is None
            or not isinstance(email, str)
            or email.strip().lower() != invitation["email"]
            or (asserted_by and asserted_by != invitation["organizationId"])
        ):
            raise InvitationNotFound("no invitation with this id for your verified e-mail")
        if int(invitation["expiresAtEpoch"]) <= timeutil.epoch(now):
            raise InvitationExpired(
                f"this invitation expired at {invitation['expiresAt']}: ask an admin of the "
                "organisation to invite you again"
            )
        org_id = invitation["organizationId"]
        member = {
            "organizationId": org_id,
            "userId": caller.user_id,
            "role": invitation["role"],
            "email": invitation["email"],
            "joinedAt": timeutil.iso(now),
        }
        self._orgs.accept(
            invitation,
            member,
            timeutil.epoch(now),
            AuditEvent(
                caller.user_id,
                "invitation.accept",
                organization_id=org_id,
                details={"target": invitation_id, "role": invitation["role"]},
            ),
        )
        organization = self._orgs.get(org_id)
        if organization is None:
            raise InvitationNotFound("the organisation of this invitation no longer exists")
        return self._view(organization, invitation["role"])

    # ---- refusals and regions -----------------------------------------------------------

    def record_refusal(self, member: Membership, route: str, message: str) -> None:
        """A refusal for role, in the organisation's trail; a lost write is logged only."""
        self._refused(member, "role.refused", "ROLE_NOT_ALLOWED", message, route=route)

    def _refused(
        self, member: Membership, action: str, code: str, message: str, **details: Any
    ) -> None:
        try:
            self._audit.record(
                AuditEvent(
                    member.user_id,
                    action,
                    result=REFUSED,
                    reason=message,
                    organization_id=member.organization_id,
                    details={"code": code, **details},
                )
            )
        except Exception:
            logger.exception("could not write the audit record of a refusal", action=action)

    def check_region(self, member: Membership, region: str, agent_id: str) -> None:
        """A deployment of a member to a region the organisation does not allow is refused
        (403 REGION_NOT_ALLOWED), audited, before anything is called in AWS."""
        if not member.organization_id:
            return
        allowed = (self._orgs.get(member.organization_id) or {}).get("allowedRegions")
        if allowed and region not in allowed:
            message = (
                f"your organisation allows deployments only to {', '.join(allowed)}, not {region}"
            )
            self._refused(
                member,
                "region.refused",
                RegionNotAllowed.code,
                message,
                region=region,
                agentId=agent_id,
            )
            raise RegionNotAllowed(message)


def _name(value: str | None) -> str:
    if not isinstance(value, str):
        raise InvalidInput("name must be a string (null is not a name)")
    name = value.strip()
    if not name or len(name) > MAX_ORG_NAME or any(ord(char) < 32 for char in name):
        raise InvalidInput(f"name must be 1-{MAX_ORG_NAME} printable characters")
    return name


def _regions(value: list[str] | None) -> list[str]:
    """None: every region (stored as an empty list); else real AWS region names."""
    if value is None:
        return []
    if not value or len(value) > MAX_ALLOWED_REGIONS:
        raise InvalidInput(
            f"allowedRegions must list 1-{MAX_ALLOWED_REGIONS} regions (null: every region)"
        )
    unknown = [region for region in value if not is_aws_region(region)]
    if unknown:
        raise InvalidInput(
            f"allowedRegions: not AWS regions: {', '.join(sorted(set(unknown))[:5])}"
        )
    return sorted(set(value))
