"""One person, one user: what the pre sign-up and post confirmation triggers decide.

- Every sign-up (e-mail, admin-created, federated) has its address normalised and
  screened: a blocked domain is refused (Cognito shows the message).
- A federated first sign-in whose provider VERIFIED the address is linked
  (AdminLinkProviderForUser) to the native user with that address instead of becoming a
  second user. With no native user yet, one is created first (verified address, no
  message) and the identity linked to it, so whichever way the person signs in next
  (another provider, or e-mail after "Forgot password") is the same user. Cognito then
  ends that very first sign-in with "Already found an entry for username ...": the
  link exists, the federated user it was about to create does not; signing in again goes
  straight to the linked user (docs/sign-in.md says what the user sees).
- An unverified address is never linked: that sign-in becomes a user of its own.
- The profile (tier freemium, the verified address) is written idempotently by the post
  confirmation trigger, and by the pre sign-up trigger for the native user it creates
  (Cognito confirms no one there, so no post confirmation follows).
- A sign-in through an organisation's SAML IdP (`org-<organizationId>`) is never linked
  (IAM Identity Center asserts no email_verified): it is a user of its own, and a member
  of that organisation. Pre sign-up refuses it when the organisation no longer exists.
  The membership is recorded by post confirmation, the first trigger that knows the
  user's `sub` (Cognito creates the user, and its `sub`, only after pre sign-up; the
  member item and the profile are keyed by it): member item + profile (organisation, the
  organisation's default role, tier enterprise, the address) + audit `member.join` (via
  sso), one transaction; a profile already in another organisation refuses the sign-in.
  The asserted address is kept on the profile only when its domain is one the
  organisation claimed (PUT /org/sso): an IdP can assert any address, and the profile's
  address is what invitations are matched against.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.audit import AuditEvent
from agent_builder.email_addresses import DomainScreen, SignUpRefused, domain_of, normalise
from agent_builder.errors import AlreadyInOrganization, NotInOrganization
from agent_builder.gateways.user_pool import FederatedIdentity, UserPoolGateway
from agent_builder.repositories.profiles import ProfilesRepository

if TYPE_CHECKING:
    from agent_builder.repositories.organizations import OrganizationsRepository
    from agent_builder.repositories.sso import SsoRepository

logger = Logger(child=True)

EXTERNAL_PROVIDER = "PreSignUp_ExternalProvider"


def _verified(attributes: dict[str, Any]) -> bool:
    return str(attributes.get("email_verified", "")).strip().lower() == "true"


class SignUpService:
    def __init__(
        self,
        pool: UserPoolGateway,
        profiles: ProfilesRepository,
        screen: DomainScreen,
        *,
        organizations: OrganizationsRepository | None = None,
        sso: SsoRepository | None = None,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        """`organizations` and `sso` (the organisations table): SSO sign-ups' memberships
        and the organisations' domain claims; without them an SSO sign-up is a plain one."""
        self._pool = pool
        self._profiles = profiles
        self._screen = screen
        self._organizations = organizations
        self._sso = sso
        self._clock = clock

    def pre_sign_up(self, event: dict[str, Any]) -> dict[str, Any]:
        """Refuse (SignUpRefused) or let the sign-up through, linking a federated one."""
        attributes = (event.get("request") or {}).get("userAttributes") or {}
        email = normalise(attributes.get("email"))
        self._screen.check(email)
        source = event.get("triggerSource")
        if source == EXTERNAL_PROVIDER:
            identity = FederatedIdentity.from_username(str(event["userName"]))
            if identity.organization_id is not None:
                self._screen_sso(identity.organization_id, email)
                return event
            self._link(str(event["userPoolId"]), str(event["userName"]), email, attributes)
        else:
            logger.info("sign-up screened", trigger=source, domain=domain_of(email))
        return event

    def _link(self, pool_id: str, username: str, email: str, attributes: dict[str, Any]) -> None:
        identity = FederatedIdentity.from_username(username)
        if not _verified(attributes):
            logger.info(
                "federated sign-up not linked: the provider did not verify the address",
                provider=identity.provider,
                domain=domain_of(email),
            )
            return
        user = self._pool.native_user_with_email(pool_id, email)
        created = user is None
        if user is None:
            user = self._pool.create_native_user(pool_id, email)
        # Also for an existing user: one made before the triggers existed has no profile.
        self._profiles.ensure(user.sub, email, timeutil.iso(self._clock()))
        self._pool.link(pool_id, user, identity)
        logger.info(
            "federated sign-up linked", provider=identity.provider, created_native_user=created
        )

    def _screen_sso(self, organization_id: str, email: str) -> None:
        """An SSO sign-up is let through (never linked) while its organisation exists."""
        if self._organizations is not None and self._organizations.get(organization_id) is None:
            logger.info("sso sign-up refused: the organisation no longer exists")
            raise SignUpRefused(
                "this single sign-on belongs to an organisation that no longer exists on the "
                "platform: ask your administrator"
            )
        logger.info("sso sign-up screened", domain=domain_of(email))

    def post_confirmation(self, event: dict[str, Any]) -> dict[str, Any]:
        """The profile of a confirmed user: freemium, with the address if it is verified;
        an SSO user's also their organisation's membership."""
        attributes = (event.get("request") or {}).get("userAttributes") or {}
        sub = attributes.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ValueError("post confirmation event without the user's sub")
        organization_id = _sso_organization(event.get("userName"))
        if organization_id is not None and self._organizations is not None:
            self._join(sub, organization_id, attributes)
            return event
        email = normalise(attributes.get("email")) if _verified(attributes) else None
        self._profiles.ensure(sub, email, timeutil.iso(self._clock()))
        logger.info(
            "profile ensured", trigger=event.get("triggerSource"), verified=email is not None
        )
        return event

    def _join(self, sub: str, organization_id: str, attributes: dict[str, Any]) -> None:
        assert self._organizations is not None
        now = timeutil.iso(self._clock())
        organization = self._organizations.get(organization_id)
        if organization is None:
            # Pre sign-up refused this; the organisation went in between. A plain profile.
            logger.warning("sso sign-up of an organisation that no longer exists")
            self._profiles.ensure(sub, None, now)
            return
        role = str(organization.get("defaultRole") or "developer")
        email = self._claimed_address(organization_id, attributes.get("email"))
        member = {
            "organizationId": organization_id,
            "userId": sub,
            "role": role,
            "email": email,
            "joinedAt": now,
        }
        try:
            joined = self._organizations.join_through_sso(
                {key: value for key, value in member.items() if value is not None},
                AuditEvent(
                    sub,
                    "member.join",
                    organization_id=organization_id,
                    details={"target": sub, "role": role, "via": "sso"},
                ),
            )
        except AlreadyInOrganization:
            raise SignUpRefused(
                "you are already a member of another organisation on the platform: leave it "
                "before signing in with this organisation's single sign-on"
            ) from None
        except NotInOrganization:
            logger.warning("sso sign-up of an organisation that no longer exists")
            self._profiles.ensure(sub, None, now)
            return
        logger.info(
            "sso member joined",
            organization_id=organization_id,
            role=role,
            repeated=not joined,
            with_email=email is not None,
        )

    def _claimed_address(self, organization_id: str, raw: object) -> str | None:
        """The asserted address, if its domain is one the organisation claimed."""
        try:
            email = normalise(raw)
        except SignUpRefused:
            return None
        if self._sso is None or self._sso.domain_owner(domain_of(email)) != organization_id:
            return None
        return email


def _sso_organization(username: object) -> str | None:
    """The organisation of an SSO user name (`org-<organizationId>_<subject>`), if it is one."""
    if not isinstance(username, str):
        return None
    try:
        return FederatedIdentity.from_username(username).organization_id
    except ValueError:
        return None


__all__ = ["EXTERNAL_PROVIDER", "SignUpService"]
