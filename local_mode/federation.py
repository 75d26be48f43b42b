"""Cognito's part in a sign-in, where moto has none: federated users, the links between
them and native users, and tokens shaped like the hosted sign-in page's.

- AdminLinkProviderForUser: moto 5 lacks it. `install_link_provider_stand_in` adds it to
  moto's Cognito (behind the same boto3 call, so the pre sign-up trigger's code is the
  production one): it checks what Cognito checks (pool, native destination user, a source
  identity that is not already a user of the pool) and records the link.
- Federated users: Cognito creates `<ProviderName>_<subject>` (status EXTERNAL_PROVIDER)
  on a federated first sign-in; moto's AdminCreateUser refuses such a name in an
  e-mail-username pool, so they are made in moto's pool directly.
- Tokens: moto's AdminInitiateAuth access token carries only
  `aws.cognito.signin.user.admin`, as real Cognito's API sign-in does; the hosted sign-in
  page's (authorization code) tokens carry the scopes the client asked for. These are
  minted by moto's own user pool (`create_jwt`, its signing key), so the emulator's JWKS
  still verifies them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

NATIVE_PROVIDER = "Cognito"
EXTERNAL_PROVIDER = "EXTERNAL_PROVIDER"
# The scopes the web client asks the hosted sign-in page for besides the API's.
OIDC_SCOPES = ("openid", "email", "profile")


@dataclass(frozen=True)
class Link:
    provider: str
    subject: str
    destination: str  # the native user's Username


def _pool(account_id: str, region: str, pool_id: str) -> Any:
    from moto.cognitoidp.models import cognitoidp_backends

    return cognitoidp_backends[account_id][region].describe_user_pool(pool_id)


def _links(pool: Any) -> dict[tuple[str, str], Link]:
    if not hasattr(pool, "local_mode_links"):
        pool.local_mode_links = {}
    links: dict[tuple[str, str], Link] = pool.local_mode_links
    return links


def install_link_provider_stand_in() -> None:
    """AdminLinkProviderForUser in moto's Cognito (idempotent)."""
    from moto.cognitoidp.exceptions import InvalidParameterException, UserNotFoundError
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    if getattr(CognitoIdpResponse, "admin_link_provider_for_user", None) is not None:
        return

    def admin_link_provider_for_user(self: Any) -> Any:
        pool = self.backend.describe_user_pool(self._get_param("UserPoolId"))
        destination = self._get_param("DestinationUser") or {}
        source = self._get_param("SourceUser") or {}
        if destination.get("ProviderName") != NATIVE_PROVIDER:
            raise InvalidParameterException("DestinationUser must be a Cognito (native) user")
        username = str(destination.get("ProviderAttributeValue", ""))
        user = pool.users.get(username) or pool._get_user(username)
        if user is None or user.status == EXTERNAL_PROVIDER:
            raise UserNotFoundError("Destination user does not exist.")
        provider, subject = (
            str(source.get("ProviderName", "")),
            str(source.get("ProviderAttributeValue", "")),
        )
        if not provider or not subject or source.get("ProviderAttributeName") != "Cognito_Subject":
            raise InvalidParameterException("SourceUser needs ProviderName and a Cognito_Subject")
        if f"{provider}_{subject}" in pool.users:
            raise InvalidParameterException(
                "Merging is not currently supported, provider attribute is already linked "
                "to an existing user"
            )
        _links(pool)[(provider, subject)] = Link(provider, subject, user.username)
        return EmptyResult()

    CognitoIdpResponse.admin_link_provider_for_user = admin_link_provider_for_user  # type: ignore[attr-defined]


class CognitoStandIn:
    """Federated users, links and hosted-UI tokens in one emulated pool."""

    def __init__(self, account_id: str, region: str, pool_id: str, client_id: str) -> None:
        self._account = account_id
        self._region = region
        self.pool_id = pool_id
        self.client_id = client_id

    @property
    def _user_pool(self) -> Any:
        return _pool(self._account, self._region, self.pool_id)

    def linked_user(self, provider: str, subject: str) -> str | None:
        """The native Username a federated identity was linked to, if it was."""
        link = _links(self._user_pool).get((provider, subject))
        return link.destination if link else None

    def federated_user(self, provider: str, subject: str) -> Any | None:
        return self._user_pool.users.get(f"{provider}_{subject}")

    def create_federated_user(self, provider: str, subject: str, attributes: dict[str, str]) -> Any:
        """`<provider>_<subject>`, EXTERNAL_PROVIDER, as Cognito makes it on a first sign-in."""
        from moto.cognitoidp.models import CognitoIdpUser

        username = f"{provider}_{subject}"
        identities = [
            {
                "userId": subject,
                "providerName": provider,
                "providerType": "SAML" if provider.startswith("org-") else "OIDC",
                "primary": True,
                "dateCreated": 0,
            }
        ]
        values = {**attributes, "identities": json.dumps(identities)}
        user = CognitoIdpUser(
            self.pool_id,
            username,
            None,
            EXTERNAL_PROVIDER,
            [{"Name": k, "Value": v} for k, v in values.items()],
        )
        self._user_pool.users[username] = user
        return user

    def user(self, username: str) -> Any:
        pool = self._user_pool
        return pool.users.get(username) or pool._get_user(username)

    def has_identity_provider(self, provider: str) -> bool:
        return provider in self._user_pool.identity_providers

    def tokens(self, username: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """ID and access tokens for `username` as the hosted sign-in page issues them
        (authorization code grant): the access token's `scope` holds `scopes`."""
        pool = self._user_pool
        user = self.user(username)
        attributes = dict(user.attribute_lookup)
        origin_jti = str(uuid.uuid4())
        access, expires_in = pool.create_jwt(
            self.client_id,
            user.username,
            "access",
            extra_data={
                "scope": " ".join(scopes),
                "username": user.username,
                "origin_jti": origin_jti,
                "version": 2,
            },
        )
        claims: dict[str, Any] = {
            "cognito:username": user.username,
            "email": attributes.get("email"),
            "email_verified": attributes.get("email_verified", "false") == "true",
            "origin_jti": origin_jti,
        }
        for name in ("name", "picture"):
            if attributes.get(name):
                claims[name] = attributes[name]
        if attributes.get("identities"):
            claims["identities"] = json.loads(attributes["identities"])
        identity, _ = pool.create_jwt(self.client_id, user.username, "id", extra_data=claims)
        return {
            "accessToken": access,
            "idToken": identity,
            "expiresIn": expires_in,
            "tokenType": "Bearer",
        }


__all__ = ["CognitoStandIn", "Link", "install_link_provider_stand_in"]
