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
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.email_addresses import DomainScreen, domain_of, normalise
from agent_builder.gateways.user_pool import FederatedIdentity, UserPoolGateway
from agent_builder.repositories.profiles import ProfilesRepository

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
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._pool = pool
        self._profiles = profiles
        self._screen = screen
        self._clock = clock

    def pre_sign_up(self, event: dict[str, Any]) -> dict[str, Any]:
        """Refuse (SignUpRefused) or let the sign-up through, linking a federated one."""
        attributes = (event.get("request") or {}).get("userAttributes") or {}
        email = normalise(attributes.get("email"))
        self._screen.check(email)
        source = event.get("triggerSource")
        if source == EXTERNAL_PROVIDER:
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

    def post_confirmation(self, event: dict[str, Any]) -> dict[str, Any]:
        """The profile of a confirmed user: freemium, with the address if it is verified."""
        attributes = (event.get("request") or {}).get("userAttributes") or {}
        sub = attributes.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ValueError("post confirmation event without the user's sub")
        email = normalise(attributes.get("email")) if _verified(attributes) else None
        self._profiles.ensure(sub, email, timeutil.iso(self._clock()))
        logger.info(
            "profile ensured", trigger=event.get("triggerSource"), verified=email is not None
        )
        return event


__all__ = ["EXTERNAL_PROVIDER", "SignUpService"]
