"""Who may do what in an organisation: the policy table, keyed by route, and its one check.

Every route of the HTTP API has an entry in POLICY (tests/runtime/test_org_policy.py
holds the table to the route table both ways); handlers/api.py applies it to every
request in one middleware, before the route's code runs. A route's rule says which
organisation roles may call it, whether the caller must be a member at all, and
whether a member may act on their own resource only (a developer deleting their own
agent, a member leaving). Roles come from the caller's profile (DynamoDB, never the
token), so a role change takes effect on the next request.

Launch routes read the profile together with the agent (one BatchGetItem) so that a
test launch stays five AWS calls: their rule is checked by the same `Access.check`
the moment the launch has the profile (`deferred`), still before anything is charged
or started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_builder.errors import NotInOrganization, RoleNotAllowed

ADMIN, DEVELOPER, VIEWER = "admin", "developer", "viewer"
ROLES = (ADMIN, DEVELOPER, VIEWER)
EVERYONE = frozenset(ROLES)
WRITERS = frozenset({ADMIN, DEVELOPER})
ADMINS = frozenset({ADMIN})


@dataclass(frozen=True)
class Rule:
    """`roles`: the member roles allowed. `members_only`: a caller outside any
    organisation gets 404 NOT_IN_ORGANIZATION (else they pass: their own data).
    `own_only`: roles allowed only on what is their own (checked with `owner`).
    `owner_param`: the path parameter naming the owner (else the service passes it).
    `deferred`: the route's service checks it once it has read the profile (and the
    resource whose owner matters)."""

    roles: frozenset[str] = EVERYONE
    members_only: bool = False
    own_only: frozenset[str] = frozenset()
    owner_param: str | None = None
    deferred: bool = False


# Open to everyone, members or not (what a member reads of their own or their org's).
OPEN = Rule()
MEMBERS = Rule(members_only=True)
ORG_ADMINS = Rule(ADMINS, members_only=True)
ORG_WRITERS = Rule(WRITERS, members_only=True)

POLICY: dict[str, Rule] = {
    "GET /me": OPEN,
    "GET /audit": OPEN,
    # Agents and runs: a member's belong to the organisation (services/agents.py).
    "POST /agents": Rule(WRITERS),
    "GET /agents": OPEN,
    "GET /agents/{agentId}": OPEN,
    # A developer deletes their own agents, an admin any (the service passes the owner).
    "DELETE /agents/{agentId}": Rule(WRITERS, own_only=frozenset({DEVELOPER}), deferred=True),
    "POST /agents/{agentId}/tests": Rule(WRITERS, deferred=True),
    "POST /agents/{agentId}/deployments": Rule(WRITERS, deferred=True),
    "GET /runs": OPEN,
    "GET /runs/{runId}": OPEN,
    "GET /runs/{runId}/logs": OPEN,
    # Tier 2: a member's own account connection; viewers connect nothing.
    "POST /aws-account/onboarding": Rule(WRITERS),
    "PUT /aws-account": Rule(WRITERS),
    "GET /aws-account": OPEN,
    "DELETE /aws-account": Rule(WRITERS),
    # Tier 3. Founding one and accepting an invitation are for non-members (the
    # service answers 409 ALREADY_IN_ORGANIZATION to a member, in the same transaction).
    "POST /org": OPEN,
    "GET /org": MEMBERS,
    "PATCH /org": ORG_ADMINS,
    "GET /org/members": MEMBERS,
    "PUT /org/members/{userId}": ORG_ADMINS,
    # Admins remove anyone; any member may remove themselves (leave).
    "DELETE /org/members/{userId}": Rule(
        EVERYONE, members_only=True, own_only=frozenset({DEVELOPER, VIEWER}), owner_param="userId"
    ),
    "POST /org/invitations": ORG_ADMINS,
    "GET /org/invitations": ORG_ADMINS,
    "DELETE /org/invitations/{invitationId}": ORG_ADMINS,
    "POST /org/invitations/{invitationId}/accept": OPEN,
    "GET /org/audit": ORG_ADMINS,
    # Seams for the SSO and organisation-account routes (built elsewhere, not routed yet).
    "PUT /org/sso": ORG_ADMINS,
    "DELETE /org/sso": ORG_ADMINS,
    "POST /org/sso/device-authorization": ORG_WRITERS,
    "GET /org/sso/session": MEMBERS,
    "DELETE /org/sso/session": MEMBERS,
    "POST /org/accounts/onboarding": ORG_ADMINS,
    "GET /org/accounts": MEMBERS,
    "DELETE /org/accounts/{accountId}": ORG_ADMINS,
}


@dataclass(frozen=True)
class Membership:
    """The caller as their profile has them: their organisation and role, if any."""

    user_id: str
    organization_id: str | None = None
    role: str | None = None
    email: str | None = None
    tier: str | None = None

    @classmethod
    def of(cls, user_id: str, profile: dict[str, Any] | None) -> Membership:
        profile = profile or {}
        organization = profile.get("organizationId")
        return cls(
            user_id=user_id,
            organization_id=organization if isinstance(organization, str) else None,
            role=profile.get("role") if organization else None,
            email=profile.get("email"),
            tier=profile.get("tier"),
        )

    @property
    def is_member(self) -> bool:
        return self.organization_id is not None


# What a refusal for role calls to be audited (the organisation's trail and the caller's).
Refusal = Callable[[Membership, str, str], None]


class Access:
    """One request's rule and the caller's membership, loaded at most once."""

    def __init__(
        self,
        route: str,
        user_id: str,
        load: Callable[[str], dict[str, Any] | None],
        *,
        on_refusal: Refusal | None = None,
    ) -> None:
        if route not in POLICY:
            # Fail closed: a route nobody wrote a rule for is nobody's.
            raise RoleNotAllowed(f"no access rule for {route}")
        self.route = route
        self.rule = POLICY[route]
        self._user_id = user_id
        self._load = load
        self._on_refusal = on_refusal
        self._membership: Membership | None = None

    def membership(
        self, profile: dict[str, Any] | None = None, *, loaded: bool = False
    ) -> Membership:
        """The caller's membership: from `profile` when the caller has read it already
        (`loaded`), else from one read of the profile."""
        if self._membership is None:
            self._membership = Membership.of(
                self._user_id, profile if loaded else self._load(self._user_id)
            )
        return self._membership

    def check(
        self,
        *,
        owner: str | None = None,
        profile: dict[str, Any] | None = None,
        loaded: bool = False,
    ) -> Membership:
        """Refuse the request if the rule does not allow this caller (on `owner`'s resource)."""
        member = self.membership(profile, loaded=loaded)
        rule = self.rule
        if not member.is_member:
            if rule.members_only:
                raise NotInOrganization("you are not a member of an organisation")
            return member
        role = member.role or VIEWER
        allowed = role in rule.roles
        if allowed and role in rule.own_only and owner is not None and owner != member.user_id:
            allowed = False
        if not allowed:
            message = f"your role in the organisation ({role}) does not allow {self.route}"
            if self._on_refusal is not None:
                self._on_refusal(member, self.route, message)
            raise RoleNotAllowed(message)
        return member
