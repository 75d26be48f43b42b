"""The Tier 3 set-up routes over HTTP (handlers/org_api.py): /org/sso, the IAM Identity
Center device flow and session, and the organisation's AWS accounts. Each route's
success, its refusals for role (403) and for outsiders (404), and its audit records.

moto serves Cognito, KMS and DynamoDB; IAM Identity Center (sso-oidc) is a botocore
Stubber behind the clients' factory, as moto has no such service.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agent_builder import clients, wiring
from tests.runtime.org_support import ADMIN, DEV, OUTSIDER, VIEWER, as_user, found, join
from tests.runtime.sso_support import START_URL, metadata_xml
from tests.runtime.support import REGION, TABLES, ApiCall, Platform, audit_records

SSO_REGION = "eu-west-1"
DEVICE_CODE = "device-SECRET-code-0123456789"
CLIENT_SECRET = "client-SECRET-0123456789"
ACCESS_TOKEN = "aoa-SECRET-ACCESS-TOKEN-value-0123456789"
SECRETS = (DEVICE_CODE, CLIENT_SECRET, ACCESS_TOKEN)


def settings_body(**overrides: Any) -> dict[str, Any]:
    return {
        "samlMetadataXml": metadata_xml(),
        "emailDomains": ["Example.com"],
        "startUrl": START_URL,
        "ssoRegion": SSO_REGION,
        "accountId": "444455556666",
        "permissionSetRole": "AgentBuilderDeployer",
        **overrides,
    }


@pytest.fixture
def enterprise(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real (moto) user pool, web client and SSO token key; sso-oidc stubbed."""
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="agent-builder-users")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool,
        ClientName="web",
        CallbackURLs=["https://console.example.com/"],
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        AllowedOAuthFlowsUserPoolClient=True,
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    monkeypatch.setenv("USER_POOL_ID", pool)
    monkeypatch.setenv("USER_POOL_CLIENT_ID", client)
    monkeypatch.setenv("SSO_TOKEN_KEY_ARN", key)
    oidc = boto3.client("sso-oidc", region_name=SSO_REGION)
    original = clients.client_in
    monkeypatch.setattr(
        clients,
        "client_in",
        lambda service, region: oidc if service == "sso-oidc" else original(service, region),
    )
    wiring.reset(keep_clients=True)
    with Stubber(oidc) as stub:
        yield SimpleNamespace(cognito=cognito, pool=pool, client=client, oidc=stub)
        stub.assert_no_pending_responses()


@pytest.fixture
def org(api: ApiCall, enterprise: Any) -> dict[str, Any]:
    organization = found(api)
    join(api, DEV, "developer")
    join(api, VIEWER, "viewer")
    return organization


def _providers(enterprise: Any) -> list[str]:
    listed = enterprise.cognito.list_identity_providers(UserPoolId=enterprise.pool)
    return [p["ProviderName"] for p in listed["Providers"]]


def _client_providers(enterprise: Any) -> list[str]:
    described = enterprise.cognito.describe_user_pool_client(
        UserPoolId=enterprise.pool, ClientId=enterprise.client
    )
    return list(described["UserPoolClient"].get("SupportedIdentityProviders", []))


# ---- PUT / DELETE /org/sso -----------------------------------------------------------


def test_an_admin_configures_sso_and_the_idp_routes_the_domains(
    api: ApiCall, org: dict[str, Any], enterprise: Any, platform: Platform
) -> None:
    answer = as_user(api, ADMIN)("PUT", "/org/sso", body=settings_body())

    assert answer.status == 200, answer.body
    provider = f"org-{org['organizationId']}"
    assert answer.body["providerName"] == provider
    assert answer.body["emailDomains"] == ["example.com"]
    assert provider in _providers(enterprise)
    assert provider in _client_providers(enterprise)
    described = enterprise.cognito.describe_identity_provider(
        UserPoolId=enterprise.pool, ProviderName=provider
    )["IdentityProvider"]
    assert described["IdpIdentifiers"] == ["example.com"]
    # Every member sees it in GET /org; nothing of the metadata document is shown.
    shown = as_user(api, VIEWER)("GET", "/org").body["sso"]
    assert shown["providerName"] == provider and shown["accountId"] == "444455556666"
    assert "samlMetadataXml" not in shown
    (record,) = [
        r
        for r in audit_records(platform, "org.sso.configure")
        if r["scope"] == f"org#{org['organizationId']}"
    ]
    assert record["userId"] == ADMIN and record["result"] == "success"


@pytest.mark.parametrize(("user", "status"), [(DEV, 403), (VIEWER, 403), (OUTSIDER, 404)])
def test_only_admins_configure_sso(
    api: ApiCall, org: dict[str, Any], enterprise: Any, user: str, status: int
) -> None:
    answer = as_user(api, user)("PUT", "/org/sso", body=settings_body())

    assert answer.status == status, answer.body
    assert not [p for p in _providers(enterprise) if p.startswith("org-")]


def test_unusable_metadata_is_422_and_stores_nothing(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    answer = as_user(api, ADMIN)(
        "PUT", "/org/sso", body=settings_body(samlMetadataXml="<not-metadata/>")
    )

    assert (answer.status, answer.body["error"]["code"]) == (422, "INVALID_SSO_CONFIG")
    assert as_user(api, ADMIN)("GET", "/org").body["sso"] is None
    assert not [p for p in _providers(enterprise) if p.startswith("org-")]


def test_both_or_neither_metadata_source_is_400(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    both = as_user(api, ADMIN)(
        "PUT", "/org/sso", body=settings_body(samlMetadataUrl="https://idp.example.com/m")
    )
    neither = settings_body()
    del neither["samlMetadataXml"]

    assert both.status == 400, both.body
    assert as_user(api, ADMIN)("PUT", "/org/sso", body=neither).status == 400


def test_a_domain_another_organisation_holds_is_409(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    assert as_user(api, ADMIN)("PUT", "/org/sso", body=settings_body()).status == 200
    found(api, OUTSIDER, name="Other")

    answer = as_user(api, OUTSIDER)("PUT", "/org/sso", body=settings_body())

    assert (answer.status, answer.body["error"]["code"]) == (409, "EMAIL_DOMAIN_TAKEN")
    assert "example.com" in answer.body["error"]["message"]


def test_removing_sso_deletes_the_idp_and_frees_the_domain(
    api: ApiCall, org: dict[str, Any], enterprise: Any, platform: Platform
) -> None:
    admin = as_user(api, ADMIN)
    assert admin("PUT", "/org/sso", body=settings_body()).status == 200

    assert admin("DELETE", "/org/sso").status == 204

    assert not [p for p in _providers(enterprise) if p.startswith("org-")]
    assert _client_providers(enterprise) == ["COGNITO"]
    assert admin("GET", "/org").body["sso"] is None
    assert admin("DELETE", "/org/sso").body["error"]["code"] == "SSO_NOT_CONFIGURED"
    assert audit_records(platform, "org.sso.remove")
    found(api, OUTSIDER, name="Other")
    assert as_user(api, OUTSIDER)("PUT", "/org/sso", body=settings_body()).status == 200


# ---- the device flow and the session -------------------------------------------------


def _register(enterprise: Any) -> None:
    enterprise.oidc.add_response(
        "register_client",
        {
            "clientId": "client-1",
            "clientSecret": CLIENT_SECRET,
            "clientIdIssuedAt": 1_700_000_000,
            "clientSecretExpiresAt": 4_000_000_000,
        },
    )


def _start(enterprise: Any) -> None:
    enterprise.oidc.add_response(
        "start_device_authorization",
        {
            "deviceCode": DEVICE_CODE,
            "userCode": "ABCD-EFGH",
            "verificationUri": "https://device.sso.eu-west-1.amazonaws.com/",
            "verificationUriComplete": "https://device.sso.eu-west-1.amazonaws.com/?user_code=ABCD-EFGH",
            "expiresIn": 600,
            "interval": 30,
        },
        {"clientId": "client-1", "clientSecret": CLIENT_SECRET, "startUrl": START_URL},
    )


def _configured(api: ApiCall, enterprise: Any) -> None:
    assert as_user(api, ADMIN)("PUT", "/org/sso", body=settings_body()).status == 200


def test_a_developer_starts_and_completes_the_device_flow(
    api: ApiCall,
    org: dict[str, Any],
    enterprise: Any,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _configured(api, enterprise)
    developer = as_user(api, DEV)
    _register(enterprise)
    _start(enterprise)

    started = developer("POST", "/org/sso/device-authorization")

    assert started.status == 200, started.body
    assert started.body["userCode"] == "ABCD-EFGH"
    assert started.body["verificationUriComplete"].endswith("user_code=ABCD-EFGH")
    # Not polled sooner than AWS's interval: still pending without a call.
    assert developer("GET", "/org/sso/session").body["status"] == "pending"
    # AWS's interval has passed (the stored next poll moved back, rather than a sleep).
    platform.client("dynamodb").update_item(
        TableName=TABLES["ORGANIZATIONS_TABLE"],
        Key={"organizationId": {"S": f"#user#{DEV}"}, "item": {"S": "sso-session"}},
        UpdateExpression="SET nextPollAt = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )
    enterprise.oidc.add_response(
        "create_token",
        {"accessToken": ACCESS_TOKEN, "tokenType": "Bearer", "expiresIn": 28800},
    )
    session = developer("GET", "/org/sso/session")

    assert session.status == 200, session.body
    assert session.body["status"] == "active" and session.body["expiresAt"]
    assert developer("GET", "/org/sso/session").body["status"] == "active"  # no new call
    assert len(audit_records(platform, "org.sso.session.activate")) == 2  # user + org trail
    assert audit_records(platform, "org.sso.session.start")
    assert not any(secret in caplog.text for secret in SECRETS)
    # Another member's session is their own.
    assert as_user(api, ADMIN)("GET", "/org/sso/session").body["status"] == "none"

    assert developer("DELETE", "/org/sso/session").status == 204
    assert developer("GET", "/org/sso/session").body["status"] == "none"


def test_viewers_start_no_session_and_outsiders_see_nothing(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    _configured(api, enterprise)

    viewer = as_user(api, VIEWER)("POST", "/org/sso/device-authorization")
    outsider = as_user(api, OUTSIDER)("POST", "/org/sso/device-authorization")

    assert (viewer.status, viewer.body["error"]["code"]) == (403, "ROLE_NOT_ALLOWED")
    assert (outsider.status, outsider.body["error"]["code"]) == (404, "NOT_IN_ORGANIZATION")
    assert as_user(api, OUTSIDER)("GET", "/org/sso/session").status == 404
    # A viewer may read (and drop) their own, empty, session.
    assert as_user(api, VIEWER)("GET", "/org/sso/session").body["status"] == "none"


def test_the_device_flow_needs_sso_settings(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    answer = as_user(api, DEV)("POST", "/org/sso/device-authorization")

    assert (answer.status, answer.body["error"]["code"]) == (409, "SSO_NOT_CONFIGURED")
    assert "PUT /org/sso" in answer.body["error"]["message"]


# ---- the organisation's AWS accounts -------------------------------------------------


def test_an_admin_gets_the_organisation_onboarding_link(
    api: ApiCall, org: dict[str, Any], enterprise: Any, platform: Platform
) -> None:
    admin = as_user(api, ADMIN)

    first = admin("POST", "/org/accounts/onboarding")
    second = admin("POST", "/org/accounts/onboarding", body={})

    assert first.status == 200, first.body
    assert first.body["externalId"] == second.body["externalId"]
    assert len(first.body["externalId"]) >= 32
    assert "RegistrationToken" in first.body["launchStackUrl"]
    assert first.body["launchStackUrl"] != second.body["launchStackUrl"]  # a new token
    assert first.body["stackSetTemplateUrl"].startswith("https://")
    assert admin("GET", "/org/accounts").body == {"accounts": []}
    records = audit_records(platform, "org.accounts.onboarding")
    assert {r["scope"] for r in records} == {f"user#{ADMIN}", f"org#{org['organizationId']}"}


@pytest.mark.parametrize(("user", "status"), [(DEV, 403), (VIEWER, 403), (OUTSIDER, 404)])
def test_only_admins_get_the_onboarding_link(
    api: ApiCall, org: dict[str, Any], enterprise: Any, user: str, status: int
) -> None:
    assert as_user(api, user)("POST", "/org/accounts/onboarding").status == status


def test_members_list_accounts_and_outsiders_get_404(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    assert as_user(api, VIEWER)("GET", "/org/accounts").status == 200
    assert as_user(api, OUTSIDER)("GET", "/org/accounts").status == 404


def test_disconnecting_an_account_that_is_not_connected_is_404(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    as_user(api, ADMIN)("POST", "/org/accounts/onboarding")

    answer = as_user(api, ADMIN)("DELETE", "/org/accounts/444455556666")
    developer = as_user(api, DEV)("DELETE", "/org/accounts/444455556666")
    malformed = as_user(api, ADMIN)("DELETE", "/org/accounts/not-an-account")

    assert (answer.status, answer.body["error"]["code"]) == (404, "ORG_ACCOUNT_NOT_FOUND")
    assert developer.status == 403
    assert malformed.status == 400


def test_without_the_sso_token_key_the_rest_of_tier3_works_and_sessions_say_how(
    api: ApiCall, org: dict[str, Any], enterprise: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configured(api, enterprise)
    monkeypatch.setenv("SSO_TOKEN_KEY_ARN", "")  # enterpriseSso=false: no key
    wiring.reset(keep_clients=True)

    assert as_user(api, ADMIN)("GET", "/org").status == 200
    assert as_user(api, DEV)("GET", "/org/sso/session").body["status"] == "none"
    refused = as_user(api, DEV)("POST", "/org/sso/device-authorization")

    assert (refused.status, refused.body["error"]["code"]) == (409, "SSO_NOT_CONFIGURED")
    assert "enterpriseSso" in refused.body["error"]["message"]


def test_the_onboarding_link_carries_the_organisations_allowed_regions(
    api: ApiCall, org: dict[str, Any], enterprise: Any
) -> None:
    from urllib.parse import parse_qs

    admin = as_user(api, ADMIN)
    assert admin("PATCH", "/org", body={"allowedRegions": ["eu-west-1", "us-east-1"]}).status == 200

    link = admin("POST", "/org/accounts/onboarding", body={"region": "eu-west-1"}).body

    # The quick-create link's parameters follow its last "?" (after the console's #/stacks).
    query = parse_qs(link["launchStackUrl"].rsplit("?", 1)[1])
    assert query["param_AllowedRegions"] == ["eu-west-1,us-east-1"]
