"""An organisation's SSO configuration (what `PUT /org/sso` and `DELETE /org/sso` do).

The routes (and the role check: admins only) are the caller's; this takes the
organisation id and the already-authorised admin's user id. PUT validates everything
first (the metadata, fetched if given as a URL; the e-mail domains; the IAM Identity
Center settings), so a 400 or 422 stores nothing. Then the settings and the domain
claims are written in one transaction (409 EMAIL_DOMAIN_TAKEN naming the domain another
organisation holds), then the Cognito IdP is created or updated; if Cognito refuses, the
previous settings and claims are put back, so nothing is left half-made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import timeutil
from agent_builder.email_domains import normalise_domains
from agent_builder.errors import DomainError, EmailDomainTaken, InvalidInput, InvalidSsoConfig
from agent_builder.gateways.metadata_url import MetadataFetcher
from agent_builder.gateways.saml_providers import SamlProviders, SamlSource, provider_name
from agent_builder.repositories.sso import DomainClaimed, SettingsChanged, SsoRepository
from agent_builder.saml_metadata import MAX_METADATA_BYTES, parse_metadata
from agent_builder.validation import ACCOUNT_ID, is_aws_region

logger = Logger(child=True)

# IAM Identity Center's AWS access portal: https://d-xxxxxxxxxx.awsapps.com/start (or a
# custom subdomain of awsapps.com), optionally with a trailing slash or #/.
START_URL = re.compile(r"^https://[a-z0-9][a-z0-9-]{0,62}\.awsapps\.com/start/?(#/?)?$")
# An IAM role name (a permission set's name, as GetRoleCredentials takes it).
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


class SsoSettingsConflict(DomainError):
    status = 409
    code = "SSO_CONFIG_CONFLICT"


@dataclass(frozen=True)
class SsoRequest:
    """The body of PUT /org/sso, as received."""

    saml_metadata_url: str | None
    saml_metadata_xml: str | None
    email_domains: Sequence[str]
    start_url: str
    sso_region: str
    account_id: str
    permission_set_role: str


class SsoConfigService:
    def __init__(
        self,
        repository: SsoRepository,
        providers: SamlProviders,
        fetcher: MetadataFetcher,
        *,
        clock: Callable[[], datetime] = timeutil.utcnow,
    ) -> None:
        self._repo = repository
        self._providers = providers
        self._fetcher = fetcher
        self._clock = clock

    def get(self, organization_id: str) -> dict[str, Any] | None:
        """The stored settings (the `sso` of GET /org), or None when SSO is not set up."""
        stored = self._repo.settings(organization_id)
        return view(stored) if stored else None

    def settings(self, organization_id: str) -> dict[str, Any] | None:
        """The stored settings as the device flow and deployments use them."""
        return self._repo.settings(organization_id)

    def configure(
        self,
        organization_id: str,
        admin_user_id: str,
        request: SsoRequest,
        *,
        extra_items: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Validate, store, create or update the IdP; `{providerName, emailDomains, ...}`.

        `extra_items`: transaction items written with the settings (the org's audit record).
        """
        domains = normalise_domains(request.email_domains)
        identity_center = self._identity_center(request)
        source, entity_id = self._metadata(request)
        moment = self._clock()
        now = timeutil.iso(moment)
        previous = self._repo.settings(organization_id)
        settings = {
            "providerName": provider_name(organization_id),
            "emailDomains": list(domains),
            "metadataUrl": source.url,
            "entityId": entity_id,
            **identity_center,
            "updatedAt": now,
            "updatedBy": admin_user_id,
        }
        try:
            stored = self._repo.save_settings(
                organization_id, settings, previous=previous, now_iso=now, extra_items=extra_items
            )
        except DomainClaimed as exc:
            raise EmailDomainTaken(
                f"{exc.domain} is already claimed by another organisation; a domain routes "
                "to one organisation's SSO only"
            ) from None
        except SettingsChanged:
            raise SsoSettingsConflict(
                "the SSO settings were changed meanwhile by another admin: read them again"
            ) from None
        try:
            self._providers.put(organization_id, source, domains)
        except Exception:
            self._restore(organization_id, stored, previous, now)
            raise
        logger.info("sso configured", organization_id=organization_id, domains=len(domains))
        return view(stored)

    def remove(self, organization_id: str, *, extra_items: Sequence[dict[str, Any]] = ()) -> bool:
        """Delete the IdP, the settings and the domain claims; False if none existed."""
        previous = self._repo.settings(organization_id)
        self._providers.delete(organization_id)  # idempotent: also cleans a lone IdP
        if previous is None:
            return False
        try:
            self._repo.delete_settings(organization_id, previous, extra_items=extra_items)
        except SettingsChanged:
            raise SsoSettingsConflict(
                "the SSO settings were changed meanwhile by another admin: try again"
            ) from None
        logger.info("sso removed", organization_id=organization_id)
        return True

    # ---- validation ---------------------------------------------------------------

    @staticmethod
    def _identity_center(request: SsoRequest) -> dict[str, str]:
        start_url = request.start_url.strip() if isinstance(request.start_url, str) else ""
        if not START_URL.match(start_url):
            raise InvalidInput(
                "startUrl must be your AWS access portal URL, like "
                "https://d-1234567890.awsapps.com/start"
            )
        if not is_aws_region(request.sso_region):
            raise InvalidInput("ssoRegion must be the AWS region of your IAM Identity Center")
        if not isinstance(request.account_id, str) or not ACCOUNT_ID.fullmatch(request.account_id):
            raise InvalidInput("accountId must be a 12-digit AWS account id")
        role = request.permission_set_role
        if not isinstance(role, str) or not ROLE_NAME.match(role):
            raise InvalidInput("permissionSetRole must be the permission set's name")
        return {
            "startUrl": start_url,
            "ssoRegion": request.sso_region,
            "accountId": request.account_id,
            "permissionSetRole": role,
        }

    def _metadata(self, request: SsoRequest) -> tuple[SamlSource, str]:
        url, xml = request.saml_metadata_url, request.saml_metadata_xml
        if (url is None) == (xml is None):
            raise InvalidInput("give samlMetadataUrl or samlMetadataXml (one of them)")
        if xml is not None:
            if not isinstance(xml, str) or len(xml.encode()) > MAX_METADATA_BYTES:
                raise InvalidSsoConfig(
                    f"samlMetadataXml must be the metadata document, at most "
                    f"{MAX_METADATA_BYTES // 1024} KiB"
                )
            document: bytes = xml.encode()
            source = SamlSource(document=xml)
        else:
            document = self._fetcher.fetch(url)  # type: ignore[arg-type]
            source = SamlSource(url=url)
        metadata = parse_metadata(document, now=self._clock())
        return source, metadata.entity_id

    def _restore(
        self,
        organization_id: str,
        stored: dict[str, Any],
        previous: dict[str, Any] | None,
        now: str,
    ) -> None:
        """Put back what was there before the IdP call failed."""
        try:
            if previous is None:
                self._repo.delete_settings(organization_id, stored)
            else:
                restored = {k: v for k, v in previous.items() if k not in ("version",)}
                self._repo.save_settings(organization_id, restored, previous=stored, now_iso=now)
        except Exception:
            logger.exception("could not restore the SSO settings", organization_id=organization_id)


def view(stored: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of the settings (no metadata document, nothing secret)."""
    return {
        "providerName": stored.get("providerName"),
        "emailDomains": list(stored.get("emailDomains") or []),
        "metadataUrl": stored.get("metadataUrl"),
        "entityId": stored.get("entityId"),
        "startUrl": stored.get("startUrl"),
        "ssoRegion": stored.get("ssoRegion"),
        "accountId": stored.get("accountId"),
        "permissionSetRole": stored.get("permissionSetRole"),
        "updatedAt": stored.get("updatedAt"),
    }


__all__ = ["SsoConfigService", "SsoRequest", "SsoSettingsConflict", "view"]
