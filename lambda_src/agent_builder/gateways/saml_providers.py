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

The client itself is a CloudFormation resource, and a deploy that updates it writes the
template's provider list, without the `org-*` ones: `reconcile()` (run by the Identity
stack's custom resource after such a deploy, and on a schedule; handlers/idp_reconcile.py)
puts them back, and the template's own settings with them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
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
def _update_shape() -> Any:
    import botocore.session

    model: Any = botocore.session.get_session().get_service_model("cognito-idp")
    return model.operation_model("UpdateUserPoolClient").input_shape


@functools.cache
def writable_client_fields() -> frozenset[str]:
    """Fields DescribeUserPoolClient returns that UpdateUserPoolClient accepts."""
    import botocore.session

    model: Any = botocore.session.get_session().get_service_model("cognito-idp")
    accepted = set(_update_shape().members)
    described = set(model.shape_for("UserPoolClientType").members)
    return frozenset((accepted & described) - set(CLIENT_KEYS))


def template_settings(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The web client's AWS::Cognito::UserPoolClient properties, as a custom resource
    receives them (CloudFormation hands every scalar over as a string), in
    UpdateUserPoolClient's shapes. The resource's property names are the API's; the ones
    it cannot write back (UserPoolId, GenerateSecret) are left out.

    ValueError names a property that does not fit the API's shape.
    """
    shape = _update_shape()
    fields = writable_client_fields()
    return {
        name: _coerce(value, shape.members[name], name)
        for name, value in properties.items()
        if name in fields
    }


def _coerce(value: Any, shape: Any, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        return {
            key: _coerce(item, shape.members[key], f"{where}.{key}")
            for key, item in value.items()
            if key in shape.members
        }
    if kind == "list" and isinstance(value, list):
        return [_coerce(item, shape.member, where) for item in value]
    if kind == "boolean" and str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    if kind in ("integer", "long") and not isinstance(value, bool):
        try:
            return int(str(value))
        except ValueError:
            pass
    if kind == "string" and isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"the client property {where} is not a valid {kind}: {str(value)[:80]!r}")


def _normal(value: Any) -> Any:
    """A value as compared: lists of plain values regardless of order (Cognito may hand
    back scopes or URLs in another order than they were written)."""
    if isinstance(value, Mapping):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_normal(item) for item in value]
        if all(isinstance(item, str | int | float | bool) for item in items):
            return sorted(items, key=repr)
        return items
    return value


def _org(providers: Sequence[str]) -> set[str]:
    return {p for p in providers if p.startswith(PROVIDER_PREFIX)}


def _others(providers: Sequence[str]) -> list[str]:
    return [p for p in providers if not p.startswith(PROVIDER_PREFIX)]


def _target(
    current: Mapping[str, Any], wanted: set[str], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The client as it should be: the template's settings (if any) over the described
    ones; as providers, the template's (else the current) ones that are not `org-*`, then
    the pool's `org-*` IdPs in name order."""
    target = {**current, **settings}
    kept = _others(target.get("SupportedIdentityProviders") or [])
    target["SupportedIdentityProviders"] = kept + sorted(wanted)
    return target


def _differs(
    current: Mapping[str, Any], target: Mapping[str, Any], settings: Mapping[str, Any]
) -> bool:
    """Whether the client must be written: its providers are not the target's, or a
    template setting does not hold (a value Cognito does not echo back, or spells another
    way, costs one redundant write of the template's own value, never a loop: whether a
    round settled is decided by the providers alone)."""
    if (
        list(current.get("SupportedIdentityProviders") or [])
        != target["SupportedIdentityProviders"]
    ):
        return True
    return any(
        _normal(current.get(name)) != _normal(target.get(name))
        for name in settings
        if name != "SupportedIdentityProviders"
    )


@dataclass(frozen=True)
class ClientReconciled:
    """What a reconcile did: the `org-*` providers the client lacked and now offers, and
    whether it called UpdateUserPoolClient at all."""

    added: tuple[str, ...]
    wrote: bool


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

    def reconcile_client(
        self, *, without: str | None = None, settings: Mapping[str, Any] | None = None
    ) -> ClientReconciled:
        """Make the client's `org-*` providers the pool's `org-*` IdPs (minus `without`),
        keeping every other provider and setting of the client; with `settings` (the
        template's, `template_settings`), those settings and non-`org-*` providers are the
        template's instead of the current ones (one pass, best effort: only the `org-*`
        providers are checked afterwards).

        Writes only when something differs. RuntimeError if other writers kept changing
        the client under it for RECONCILE_ATTEMPTS rounds."""
        settings = dict(settings or {})
        wrote = False
        first: set[str] | None = None
        for _attempt in range(RECONCILE_ATTEMPTS):
            wanted = self._org_providers() - {without}
            current = self._describe_client()
            if first is None:
                first = _org(current.get("SupportedIdentityProviders") or [])
            target = _target(current, wanted, settings)
            if _differs(current, target, settings):
                self._write_client(target)
                wrote = True
            # Checked against a fresh read: another writer may have raced with this one.
            again = self._describe_client()
            fresh = self._org_providers() - {without}
            if _org(again.get("SupportedIdentityProviders") or []) == fresh:
                added = _org(again.get("SupportedIdentityProviders") or []) - first
                return ClientReconciled(added=tuple(sorted(added)), wrote=wrote)
            logger.info("client providers changed meanwhile; reconciling again")
        raise RuntimeError("the web client's identity providers did not settle")

    def reconcile(self, template: Mapping[str, Any] | None = None) -> ClientReconciled:
        """After a deploy rewrote the client (CloudFormation writes the template's
        providers, without the `org-*` ones), or on the schedule (`template` None): every
        `org-*` IdP of the pool is among the client's providers again.

        `template`: the client's template properties, as the Identity stack's custom
        resource receives them. The template's settings are then restored as well, in case
        a runtime read-modify-write that read the client before the deploy wrote it back
        after (handlers/idp_reconcile.py). Nothing is written when all of it holds."""
        settings = template_settings(template) if template is not None else None
        result = self.reconcile_client(settings=settings)
        logger.info(
            "client reconciled",
            added=list(result.added),
            wrote=result.wrote,
            with_template=template is not None,
        )
        return result

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

    def _write_client(self, target: Mapping[str, Any]) -> None:
        """UpdateUserPoolClient with every writable field of `target` (the described
        client with its changes), so nothing it is not meant to change is reset."""
        fields = writable_client_fields()
        request = {key: value for key, value in target.items() if key in fields}
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
    "ClientReconciled",
    "SamlProviders",
    "SamlSource",
    "provider_name",
    "template_settings",
    "writable_client_fields",
]
