"""Enterprise SAML identity providers in the Cognito user pool, one per organisation.

Each organisation's IdP is named `org-<organizationId>`, built from its IAM Identity
Center SAML metadata (a URL Cognito fetches itself, or the document), with the
organisation's e-mail domains as IdP identifiers (the hosted sign-in page routes an
address of those domains to it). The web client lists it among its supported providers.

UpdateUserPoolClient resets every field it is not given, so the client is read
(DescribeUserPoolClient), changed and written back with every writable field. The
writable fields are what botocore's model says UpdateUserPoolClient accepts and
DescribeUserPoolClient returns, so a field AWS adds later is carried over too.

The client's `org-*` providers are reconciled with the pool's `org-*` IdPs rather than
added or removed one name at a time: two organisations configuring SSO at once each
write the pool's whole set, and each write is checked afterwards, so a write that raced
with another one is redone instead of dropping the other organisation's provider.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from agent_builder.errors import EmailDomainTaken, InvalidSsoConfig
from agent_builder.repositories.dynamo import error_code

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

logger = Logger(child=True)

PROVIDER_PREFIX = "org-"
# The SAML attribute names the IdP config reads, as docs/enterprise.md tells the admin
# to define them in the IAM Identity Center application ("Attribute mappings"):
#   Subject -> ${user:subject} (persistent), email -> ${user:email}, name -> ${user:name}.
# email_verified is not mapped: Identity Center cannot assert it; an SSO address is
# trusted because its domain is one the organisation claimed (repositories/sso.py).
ATTRIBUTE_MAPPING = {"email": "email", "name": "name"}
RECONCILE_ATTEMPTS = 4
# The request's keys, not fields to copy.
CLIENT_KEYS = ("UserPoolId", "ClientId")


def provider_name(organization_id: str) -> str:
    return f"{PROVIDER_PREFIX}{organization_id}"


@dataclass(frozen=True)
class SamlSource:
    """Where Cognito gets the metadata: exactly one of a https URL or the document."""

    url: str | None = None
    document: str | None = None

    def provider_details(self) -> dict[str, str]:
        if self.url:
            return {"MetadataURL": self.url, "IDPSignout": "false"}
        if self.document:
            return {"MetadataFile": self.document, "IDPSignout": "false"}
        raise ValueError("a SAML source needs a URL or a document")


@functools.cache
def writable_client_fields() -> frozenset[str]:
    """Fields DescribeUserPoolClient returns that UpdateUserPoolClient accepts."""
    import botocore.session

    model: Any = botocore.session.get_session().get_service_model("cognito-idp")
    accepted = set(model.operation_model("UpdateUserPoolClient").input_shape.members)
    described = set(model.shape_for("UserPoolClientType").members)
    return frozenset((accepted & described) - set(CLIENT_KEYS))


class SamlProviders:
    def __init__(
        self, client: CognitoIdentityProviderClient, *, user_pool_id: str, client_id: str
    ) -> None:
        self._cognito = client
        self._pool = user_pool_id
        self._client_id = client_id

    def put(self, organization_id: str, source: SamlSource, email_domains: Sequence[str]) -> str:
        """Create or update the organisation's IdP and make the web client offer it.

        InvalidSsoConfig if Cognito refuses the metadata; nothing is left half-made (a
        provider created here is deleted again when the client cannot list it).
        """
        from botocore.exceptions import ClientError

        name = provider_name(organization_id)
        arguments: dict[str, Any] = {
            "UserPoolId": self._pool,
            "ProviderName": name,
            "ProviderDetails": source.provider_details(),
            "AttributeMapping": ATTRIBUTE_MAPPING,
            "IdpIdentifiers": list(email_domains),
        }
        created = False
        try:
            if self.exists(organization_id):
                self._cognito.update_identity_provider(**arguments)
            else:
                self._cognito.create_identity_provider(**arguments, ProviderType="SAML")
                created = True
        except ClientError as exc:
            code = error_code(exc)
            message = exc.response.get("Error", {}).get("Message", "")
            if code == "DuplicateProviderException":
                raise EmailDomainTaken(
                    f"Cognito already routes one of {', '.join(email_domains)} to another "
                    "identity provider"
                ) from None
            if code == "InvalidParameterException":
                raise InvalidSsoConfig(f"Cognito refused the SAML metadata: {message}") from None
            raise
        try:
            self.reconcile_client()
        except Exception:
            if created:
                self._delete_provider(name)
            raise
        logger.info("saml provider saved", provider=name, new_provider=created)
        return name

    def delete(self, organization_id: str) -> bool:
        """Take the IdP off the client, then delete it; False if it did not exist."""
        name = provider_name(organization_id)
        self.reconcile_client(without=name)
        deleted = self._delete_provider(name)
        logger.info("saml provider deleted", provider=name, existed=deleted)
        return deleted

    def exists(self, organization_id: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._cognito.describe_identity_provider(
                UserPoolId=self._pool, ProviderName=provider_name(organization_id)
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def describe(self, organization_id: str) -> dict[str, Any] | None:
        """The IdP as Cognito holds it (name, details, identifiers), or None."""
        from botocore.exceptions import ClientError

        try:
            answer = self._cognito.describe_identity_provider(
                UserPoolId=self._pool, ProviderName=provider_name(organization_id)
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(answer["IdentityProvider"])

    def supported_providers(self) -> list[str]:
        return list(self._describe_client().get("SupportedIdentityProviders") or [])

    def reconcile_client(self, *, without: str | None = None) -> None:
        """Make the client's `org-*` providers the pool's `org-*` IdPs (minus `without`),
        keeping every other provider and setting of the client."""
        for _attempt in range(RECONCILE_ATTEMPTS):
            wanted = self._org_providers() - {without}
            current = self._describe_client()
            supported = list(current.get("SupportedIdentityProviders") or [])
            kept = [p for p in supported if not p.startswith(PROVIDER_PREFIX)]
            desired = kept + sorted(p for p in wanted if p is not None)
            if desired != supported:
                self._write_client(current, desired)
            # Checked against a fresh read: another writer may have raced with this one.
            again = self._describe_client().get("SupportedIdentityProviders") or []
            fresh = self._org_providers() - {without}
            if {p for p in again if p.startswith(PROVIDER_PREFIX)} == fresh:
                return
            logger.info("client providers changed meanwhile; reconciling again")
        raise RuntimeError("the web client's identity providers did not settle")

    # ---- the pool -------------------------------------------------------------------

    def _org_providers(self) -> set[str]:
        names: set[str] = set()
        token: str | None = None
        while True:
            page = self._cognito.list_identity_providers(
                UserPoolId=self._pool, MaxResults=60, **({"NextToken": token} if token else {})
            )
            names.update(
                p["ProviderName"]
                for p in page.get("Providers", [])
                if p.get("ProviderName", "").startswith(PROVIDER_PREFIX)
            )
            token = page.get("NextToken")
            if not token:
                return names

    def _describe_client(self) -> dict[str, Any]:
        answer = self._cognito.describe_user_pool_client(
            UserPoolId=self._pool, ClientId=self._client_id
        )
        return dict(answer["UserPoolClient"])

    def _write_client(self, current: dict[str, Any], providers: list[str]) -> None:
        fields = writable_client_fields()
        request = {key: value for key, value in current.items() if key in fields}
        request["SupportedIdentityProviders"] = providers
        self._cognito.update_user_pool_client(
            UserPoolId=self._pool, ClientId=self._client_id, **request
        )

    def _delete_provider(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._cognito.delete_identity_provider(UserPoolId=self._pool, ProviderName=name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True


__all__ = [
    "ATTRIBUTE_MAPPING",
    "PROVIDER_PREFIX",
    "SamlProviders",
    "SamlSource",
    "provider_name",
    "writable_client_fields",
]
