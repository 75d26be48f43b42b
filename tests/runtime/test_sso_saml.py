"""Enterprise SAML: the Cognito IdP gateway (moto), metadata and domain validation, and
the SSO configuration service with its domain claims (moto DynamoDB)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agent_builder.email_domains import normalise_domains
from agent_builder.errors import EmailDomainTaken, InvalidInput, InvalidSsoConfig
from agent_builder.gateways.metadata_url import MetadataFetcher
from agent_builder.gateways.saml_providers import (
    ATTRIBUTE_MAPPING,
    SamlProviders,
    SamlSource,
    writable_client_fields,
)
from agent_builder.repositories.sso import SsoRepository
from agent_builder.saml_metadata import parse_metadata
from agent_builder.services.sso_config import SsoConfigService, SsoRequest
from tests.runtime.conftest import create_tables
from tests.runtime.sso_support import (
    IDP_ENTITY,
    ORG,
    OTHER_ORG,
    START_URL,
    certificate_b64,
    metadata_xml,
)
from tests.runtime.support import REGION, TABLES

NOW = datetime.now(UTC)
CLIENT_SETTINGS: dict[str, Any] = {
    "ClientName": "agent-builder-web",
    "CallbackURLs": ["https://console.example.com/auth/callback"],
    "LogoutURLs": ["https://console.example.com/"],
    "AllowedOAuthFlows": ["code"],
    "AllowedOAuthScopes": ["openid", "email", "profile"],
    "AllowedOAuthFlowsUserPoolClient": True,
    "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    "SupportedIdentityProviders": ["COGNITO"],
    "PreventUserExistenceErrors": "ENABLED",
    "EnableTokenRevocation": True,
    "AccessTokenValidity": 60,
    "IdTokenValidity": 60,
    "RefreshTokenValidity": 30,
    "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
}


@pytest.fixture
def cognito() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        client = boto3.client("cognito-idp", region_name=REGION)
        pool = client.create_user_pool(PoolName="agent-builder-users")["UserPool"]["Id"]
        app = client.create_user_pool_client(UserPoolId=pool, **CLIENT_SETTINGS)
        yield client, pool, app["UserPoolClient"]["ClientId"]


@pytest.fixture
def providers(cognito: tuple[Any, str, str]) -> SamlProviders:
    client, pool, app = cognito
    return SamlProviders(client, user_pool_id=pool, client_id=app)


def _client(cognito: tuple[Any, str, str]) -> dict[str, Any]:
    client, pool, app = cognito
    return dict(client.describe_user_pool_client(UserPoolId=pool, ClientId=app)["UserPoolClient"])


def _settings_without_providers(described: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in described.items()
        if key in CLIENT_SETTINGS and key != "SupportedIdentityProviders"
    }


# ---- the gateway ------------------------------------------------------------------------


def test_writable_fields_come_from_botocore_and_exclude_read_only_ones() -> None:
    fields = writable_client_fields()
    assert {"CallbackURLs", "AllowedOAuthScopes", "TokenValidityUnits"} <= fields
    assert "SupportedIdentityProviders" in fields
    assert not {"ClientSecret", "CreationDate", "LastModifiedDate", "ClientId"} & fields


def test_put_creates_the_idp_with_domains_mapping_and_adds_it_to_the_client(
    cognito: tuple[Any, str, str], providers: SamlProviders
) -> None:
    client, pool, _ = cognito
    before = _settings_without_providers(_client(cognito))
    name = providers.put(ORG, SamlSource(document=metadata_xml()), ["example.com", "example.org"])
    assert name == f"org-{ORG}"
    idp = client.describe_identity_provider(UserPoolId=pool, ProviderName=name)["IdentityProvider"]
    assert idp["ProviderType"] == "SAML"
    assert idp["IdpIdentifiers"] == ["example.com", "example.org"]
    assert idp["AttributeMapping"] == ATTRIBUTE_MAPPING
    assert "MetadataFile" in idp["ProviderDetails"]
    after = _client(cognito)
    assert after["SupportedIdentityProviders"] == ["COGNITO", name]
    # Every other setting survives the write (UpdateUserPoolClient resets what it is not given).
    assert _settings_without_providers(after) == before


def test_update_replaces_metadata_and_domains(
    cognito: tuple[Any, str, str], providers: SamlProviders
) -> None:
    client, pool, _ = cognito
    providers.put(ORG, SamlSource(document=metadata_xml()), ["example.com"])
    providers.put(ORG, SamlSource(url="https://idp.example.com/metadata.xml"), ["example.net"])
    idp = client.describe_identity_provider(UserPoolId=pool, ProviderName=f"org-{ORG}")[
        "IdentityProvider"
    ]
    assert idp["IdpIdentifiers"] == ["example.net"]
    assert idp["ProviderDetails"]["MetadataURL"] == "https://idp.example.com/metadata.xml"
    assert "MetadataFile" not in idp["ProviderDetails"]
    assert _client(cognito)["SupportedIdentityProviders"] == ["COGNITO", f"org-{ORG}"]


def test_delete_removes_only_that_provider_keeps_settings_and_is_idempotent(
    cognito: tuple[Any, str, str], providers: SamlProviders
) -> None:
    before = _settings_without_providers(_client(cognito))
    providers.put(ORG, SamlSource(document=metadata_xml()), ["example.com"])
    providers.put(OTHER_ORG, SamlSource(document=metadata_xml()), ["other.com"])
    assert providers.delete(ORG) is True
    after = _client(cognito)
    assert after["SupportedIdentityProviders"] == ["COGNITO", f"org-{OTHER_ORG}"]
    assert _settings_without_providers(after) == before
    assert providers.exists(ORG) is False
    assert providers.delete(ORG) is False  # again: nothing to do, no error
    assert _client(cognito)["SupportedIdentityProviders"] == ["COGNITO", f"org-{OTHER_ORG}"]


def test_reconcile_restores_a_provider_another_writer_dropped(
    cognito: tuple[Any, str, str], providers: SamlProviders
) -> None:
    client, pool, app = cognito
    providers.put(ORG, SamlSource(document=metadata_xml()), ["example.com"])
    # A racing writer that read the client before ORG existed writes it back without it.
    client.update_user_pool_client(
        UserPoolId=pool,
        ClientId=app,
        **{**CLIENT_SETTINGS, "SupportedIdentityProviders": ["COGNITO"]},
    )
    providers.put(OTHER_ORG, SamlSource(document=metadata_xml()), ["other.com"])
    assert _client(cognito)["SupportedIdentityProviders"] == [
        "COGNITO",
        *sorted([f"org-{ORG}", f"org-{OTHER_ORG}"]),
    ]


# ---- metadata --------------------------------------------------------------------------


def test_metadata_of_an_idp_parses() -> None:
    parsed = parse_metadata(metadata_xml(), now=NOW)
    assert parsed.entity_id == IDP_ENTITY
    assert parsed.sso_url.startswith("https://")
    assert parsed.certificate_expires_at is not None and parsed.certificate_expires_at > NOW


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("", "empty"),
        ("<not xml", "not well-formed"),
        ("<a/>", "not SAML 2.0 metadata"),
        (metadata_xml(idp=False), "no IDPSSODescriptor"),
        (metadata_xml(with_key=False), "no signing certificate"),
        (metadata_xml(certificate="bm90IGEgY2VydA=="), "no signing certificate"),
        (metadata_xml(certificate=certificate_b64(-10)), "expired"),
        (metadata_xml(with_sso=False), "no SingleSignOnService"),
        (metadata_xml(sso_url="http://idp.example.com/sso"), "https"),
        (
            '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol">]>'
            "<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata'>&lol;"
            "</md:EntityDescriptor>",
            "DTD",
        ),
    ],
)
def test_unusable_metadata_is_refused_saying_why(document: str, says: str) -> None:
    with pytest.raises(InvalidSsoConfig, match=says):
        parse_metadata(document, now=NOW)


def test_external_entities_are_never_fetched() -> None:
    document = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    )
    with pytest.raises(InvalidSsoConfig, match="DTD"):
        parse_metadata(document, now=NOW)


# ---- the metadata URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://idp.example.com/metadata", "https"),
        ("https://user:pw@idp.example.com/metadata", "user name"),
        ("https://idp.example.com:8443/metadata", "443"),
        ("ftp://idp.example.com/", "https"),
        (42, "https URL"),
    ],
)
def test_metadata_urls_that_are_not_plain_https_are_refused(url: object, says: str) -> None:
    with pytest.raises(InvalidSsoConfig, match=says):
        MetadataFetcher(resolver=lambda host, port: ["93.184.216.34"]).fetch(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "192.168.0.1",
        "::1",
        "fd00::1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_metadata_urls_resolving_to_internal_addresses_are_refused(address: str) -> None:
    fetcher = MetadataFetcher(resolver=lambda host, port: [address])
    with pytest.raises(InvalidSsoConfig, match="private, loopback or reserved"):
        fetcher.fetch("https://idp.example.com/metadata")


def test_one_internal_address_among_public_ones_is_refused() -> None:
    fetcher = MetadataFetcher(resolver=lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(InvalidSsoConfig, match="private"):
        fetcher.fetch("https://idp.example.com/metadata")


def test_an_unresolvable_host_is_a_clear_refusal() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(InvalidSsoConfig, match="does not resolve"):
        MetadataFetcher(resolver=fail).fetch("https://nowhere.invalid/metadata")


# ---- e-mail domains ---------------------------------------------------------------------


def test_domains_are_lower_cased_trimmed_and_deduplicated() -> None:
    assert normalise_domains([" Example.COM. ", "@example.com", "corp.example.org"]) == (
        "example.com",
        "corp.example.org",
    )


@pytest.mark.parametrize(
    ("domains", "says"),
    [
        ([], "at least one"),
        ("example.com", "at least one"),
        (["gmail.com"], "public mail service"),
        (["Outlook.com"], "public mail service"),
        (["not a domain"], "not a domain name"),
        (["-bad.com"], "not a domain name"),
        (["localhost"], "not a domain name"),
        ([f"{'a' * 40}.com"], "longer than 40"),
        ([f"d{i}.com" for i in range(21)], "at most 20"),
    ],
)
def test_unusable_domains_are_refused(domains: object, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        normalise_domains(domains)


# ---- the configuration service -----------------------------------------------------------


@pytest.fixture
def service(cognito: tuple[Any, str, str], providers: SamlProviders) -> SsoConfigService:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_tables(dynamodb)
    repository = SsoRepository(dynamodb, TABLES["ORGANIZATIONS_TABLE"])
    return SsoConfigService(
        repository, providers, MetadataFetcher(resolver=lambda host, port: ["10.0.0.1"])
    )


def _request(**overrides: Any) -> SsoRequest:
    values: dict[str, Any] = {
        "saml_metadata_url": None,
        "saml_metadata_xml": metadata_xml(),
        "email_domains": ["example.com"],
        "start_url": START_URL,
        "sso_region": "eu-west-1",
        "account_id": "222233334444",
        "permission_set_role": "AgentBuilderDeployer",
        **overrides,
    }
    return SsoRequest(**values)


def test_configure_stores_settings_claims_domains_and_creates_the_idp(
    service: SsoConfigService, providers: SamlProviders
) -> None:
    answer = service.configure(
        ORG, "admin-1", _request(email_domains=["Example.com", "example.org"])
    )
    assert answer["providerName"] == f"org-{ORG}"
    assert answer["emailDomains"] == ["example.com", "example.org"]
    assert answer["entityId"] == IDP_ENTITY
    assert providers.exists(ORG)
    stored = service.settings(ORG)
    assert stored is not None and stored["accountId"] == "222233334444"
    assert "metadataXml" not in answer and "samlMetadataXml" not in answer


def test_a_domain_claimed_by_another_organisation_is_409_and_nothing_changes(
    service: SsoConfigService, providers: SamlProviders
) -> None:
    service.configure(OTHER_ORG, "admin-2", _request(email_domains=["example.com"]))
    with pytest.raises(EmailDomainTaken, match=r"example\.com"):
        service.configure(ORG, "admin-1", _request(email_domains=["new.com", "example.com"]))
    assert service.settings(ORG) is None
    assert not providers.exists(ORG)
    # new.com was not claimed either: another organisation may take it.
    service.configure(OTHER_ORG, "admin-2", _request(email_domains=["example.com", "new.com"]))


def test_dropping_a_domain_releases_it_for_other_organisations(service: SsoConfigService) -> None:
    service.configure(ORG, "admin-1", _request(email_domains=["example.com", "example.org"]))
    service.configure(ORG, "admin-1", _request(email_domains=["example.org"]))
    service.configure(OTHER_ORG, "admin-2", _request(email_domains=["example.com"]))
    assert service.settings(OTHER_ORG) is not None


def test_bad_metadata_is_422_and_stores_nothing(
    service: SsoConfigService, providers: SamlProviders
) -> None:
    with pytest.raises(InvalidSsoConfig, match="no IDPSSODescriptor"):
        service.configure(ORG, "admin-1", _request(saml_metadata_xml=metadata_xml(idp=False)))
    with pytest.raises(InvalidSsoConfig, match="private"):
        service.configure(
            ORG,
            "admin-1",
            _request(saml_metadata_xml=None, saml_metadata_url="https://intranet.example.com/m"),
        )
    assert service.settings(ORG) is None
    assert not providers.exists(ORG)


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"start_url": "https://example.com/start"}, "startUrl"),
        ({"sso_region": "mars-1"}, "ssoRegion"),
        ({"account_id": "12345"}, "accountId"),
        ({"permission_set_role": "no spaces allowed"}, "permissionSetRole"),
        ({"saml_metadata_url": "https://idp.example.com/m"}, "one of them"),
        ({"saml_metadata_xml": None}, "one of them"),
    ],
)
def test_invalid_identity_center_settings_are_400(
    service: SsoConfigService, override: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidInput, match=says):
        service.configure(ORG, "admin-1", _request(**override))


def test_cognito_refusing_the_idp_puts_the_previous_settings_back(
    service: SsoConfigService, providers: SamlProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.configure(ORG, "admin-1", _request(email_domains=["example.com"]))

    def refuse(*_: Any, **__: Any) -> str:
        raise InvalidSsoConfig("Cognito refused the SAML metadata: bad")

    monkeypatch.setattr(providers, "put", refuse)
    with pytest.raises(InvalidSsoConfig):
        service.configure(ORG, "admin-1", _request(email_domains=["example.net"]))
    stored = service.settings(ORG)
    assert stored is not None and stored["emailDomains"] == ["example.com"]
    # example.net was released again.
    monkeypatch.undo()
    service.configure(OTHER_ORG, "admin-2", _request(email_domains=["example.net"]))


def test_remove_deletes_idp_settings_and_claims_and_is_idempotent(
    service: SsoConfigService, providers: SamlProviders
) -> None:
    service.configure(ORG, "admin-1", _request(email_domains=["example.com"]))
    assert service.remove(ORG) is True
    assert service.settings(ORG) is None
    assert not providers.exists(ORG)
    assert service.remove(ORG) is False
    service.configure(OTHER_ORG, "admin-2", _request(email_domains=["example.com"]))


def test_domain_owner_tells_which_organisation_a_domain_routes_to(
    service: SsoConfigService, cognito: tuple[Any, str, str]
) -> None:
    service.configure(ORG, "admin-1", _request(email_domains=["example.com"]))
    repository = SsoRepository(
        boto3.client("dynamodb", region_name=REGION), TABLES["ORGANIZATIONS_TABLE"]
    )
    assert repository.domain_owner("example.com") == ORG
    assert repository.domain_owner("example.org") is None
