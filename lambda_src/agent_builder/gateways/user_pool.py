"""The Cognito user pool, as the sign-up triggers see it: users by e-mail, a native user
made for a federated identity, and the link between them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

# Cognito's own provider name for its native (e-mail and password) users.
NATIVE_PROVIDER = "Cognito"
# An organisation's SAML IdP is `org-<organizationId>` (gateways/saml_providers.py).
ORGANIZATION_PROVIDER = "org"
# Cognito names a federated user `<ProviderName>_<subject>` and sometimes lower-cases the
# name in the trigger event (`google_123`); AdminLinkProviderForUser needs its exact spelling.
_BUILT_IN_PROVIDERS = {
    "google": "Google",
    "facebook": "Facebook",
    "loginwithamazon": "LoginWithAmazon",
    "signinwithapple": "SignInWithApple",
}


@dataclass(frozen=True)
class FederatedIdentity:
    provider: str  # the IdP's ProviderName in the pool: Google, GitHub, org-<organizationId>
    subject: str  # the IdP's user id (the `Cognito_Subject` Cognito links on)

    @classmethod
    def from_username(cls, username: str) -> FederatedIdentity:
        provider, sep, subject = username.partition("_")
        if not sep or not provider or not subject:
            raise ValueError(f"not a federated user name: {username!r}")
        return cls(_BUILT_IN_PROVIDERS.get(provider.lower(), provider), subject)

    @property
    def organization_id(self) -> str | None:
        """The organisation whose SAML IdP this is (`org-<organizationId>`), if it is one."""
        prefix, sep, organization = self.provider.partition("-")
        if prefix.lower() == ORGANIZATION_PROVIDER and sep and organization:
            return organization.lower()
        return None


@dataclass(frozen=True)
class PoolUser:
    username: str
    sub: str
    status: str


def _user(raw: dict[str, Any]) -> PoolUser:
    attributes = {a["Name"]: a["Value"] for a in raw.get("Attributes", [])}
    return PoolUser(
        username=raw["Username"],
        sub=attributes.get("sub", raw["Username"]),
        status=raw.get("UserStatus", ""),
    )


class UserPoolGateway:
    def __init__(self, client: CognitoIdentityProviderClient) -> None:
        self._client = client

    def native_user_with_email(self, pool_id: str, email: str) -> PoolUser | None:
        """The oldest native (not federated) user whose e-mail is `email`, if any."""
        response = self._client.list_users(
            UserPoolId=pool_id, Filter=f'email = "{email}"', Limit=60
        )
        users = sorted(
            (
                raw
                for raw in response.get("Users", [])
                if raw.get("UserStatus") != "EXTERNAL_PROVIDER"
            ),
            key=lambda raw: str(raw.get("UserCreateDate", "")),
        )
        return _user(dict(users[0])) if users else None

    def create_native_user(self, pool_id: str, email: str) -> PoolUser:
        """A confirmed e-mail user with a verified address and a random password nobody
        knows (the person sets one with "Forgot password" if they ever want one), and no
        invitation message."""
        created = self._client.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )["User"]
        user = _user(dict(created))
        # FORCE_CHANGE_PASSWORD users cannot reset their password: make it CONFIRMED.
        self._client.admin_set_user_password(
            UserPoolId=pool_id,
            Username=user.username,
            Password=f"{secrets.token_urlsafe(24)}Aa1!",
            Permanent=True,
        )
        return user

    def link(self, pool_id: str, user: PoolUser, identity: FederatedIdentity) -> None:
        """Sign-ins through `identity` become sign-ins of `user` from now on."""
        self._client.admin_link_provider_for_user(
            UserPoolId=pool_id,
            DestinationUser={
                "ProviderName": NATIVE_PROVIDER,
                "ProviderAttributeValue": user.username,
            },
            SourceUser={
                "ProviderName": identity.provider,
                "ProviderAttributeName": "Cognito_Subject",
                "ProviderAttributeValue": identity.subject,
            },
        )


__all__ = [
    "NATIVE_PROVIDER",
    "ORGANIZATION_PROVIDER",
    "FederatedIdentity",
    "PoolUser",
    "UserPoolGateway",
]
