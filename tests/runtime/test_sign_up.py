"""The sign-up triggers (handlers.sign_up): e-mail screening, one person one user
(linking a federated sign-in), and the profile. moto for Cognito and DynamoDB; botocore's
Stubber (and a before-call answer) for AdminLinkProviderForUser, which moto 5 lacks."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agent_builder import clients, wiring
from agent_builder.email_addresses import DomainScreen, SignUpRefused, normalise
from agent_builder.gateways.user_pool import FederatedIdentity, UserPoolGateway
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.services.sign_up import SignUpService
from tests.runtime.support import REGION, TABLES, Platform, aws_answer, lambda_context

LINK = "before-call.cognito-idp.AdminLinkProviderForUser"


@pytest.fixture
def pool(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BLOCKED_EMAIL_DOMAINS", "spam.example")
    wiring.reset(keep_clients=True)
    cognito = boto3.client("cognito-idp", region_name=REGION)
    return str(
        cognito.create_user_pool(PoolName="users", UsernameAttributes=["email"])["UserPool"]["Id"]
    )


def event(pool_id: str, source: str, username: str, **attributes: str) -> dict[str, Any]:
    return {
        "version": "1",
        "region": REGION,
        "userPoolId": pool_id,
        "userName": username,
        "callerContext": {"awsSdkVersion": "test", "clientId": "client"},
        "triggerSource": source,
        "request": {"userAttributes": attributes},
        "response": {},
    }


def profile(platform: Platform, user_id: str) -> dict[str, Any] | None:
    return ProfilesRepository(
        boto3.client("dynamodb", region_name=REGION), TABLES["PROFILES_TABLE"]
    ).get(user_id)


def native_users(pool_id: str) -> list[dict[str, Any]]:
    users = boto3.client("cognito-idp", region_name=REGION).list_users(UserPoolId=pool_id)["Users"]
    return [u for u in users if u["UserStatus"] != "EXTERNAL_PROVIDER"]


# ---- e-mail addresses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Ann@Example.COM ", "ann@example.com"),
        ("ann+work@example.com", "ann+work@example.com"),  # plus-addresses are kept
        ("first.last@example.com", "first.last@example.com"),  # dots too
        ("ann@bücher.example", "ann@xn--bcher-kva.example"),
    ],
)
def test_addresses_are_trimmed_lower_cased_and_idna_encoded_only(raw: str, normal: str) -> None:
    assert normalise(raw) == normal


@pytest.mark.parametrize("raw", ["", "   ", "no-at-sign", 'quo"te@example.com', "a@b", None])
def test_what_is_not_an_address_is_refused(raw: Any) -> None:
    with pytest.raises(SignUpRefused):
        normalise(raw)


def test_blocked_domains_and_their_subdomains_are_refused_and_config_extends_the_list() -> None:
    screen = DomainScreen(["spam.example"])
    for address in ("x@mailinator.com", "x@eu.mailinator.com", "x@spam.example"):
        with pytest.raises(SignUpRefused, match="cannot sign up"):
            screen.check(address)
    screen.check("x@example.com")
    screen.check("x@notmailinator.com")  # a suffix that is not a subdomain


def test_federated_user_names_give_the_exact_provider_name() -> None:
    assert FederatedIdentity.from_username("google_123") == FederatedIdentity("Google", "123")
    assert FederatedIdentity.from_username("org-abc_ann@corp.example") == FederatedIdentity(
        "org-abc", "ann@corp.example"
    )
    with pytest.raises(ValueError):
        FederatedIdentity.from_username("no-underscore")


# ---- pre sign-up ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["PreSignUp_SignUp", "PreSignUp_AdminCreateUser"])
def test_a_blocked_domain_is_refused_with_a_message_for_the_user(pool: str, source: str) -> None:
    from handlers.sign_up import pre_sign_up

    with pytest.raises(SignUpRefused, match=r"spam\.example"):
        pre_sign_up(event(pool, source, "x", email="Eve@Spam.Example"), lambda_context())


def test_an_email_sign_up_passes_unchanged(pool: str) -> None:
    from handlers.sign_up import pre_sign_up

    sign_up = event(pool, "PreSignUp_SignUp", "x", email="ann@example.com")
    assert pre_sign_up(sign_up, lambda_context()) == sign_up


def test_a_verified_federated_first_sign_in_gets_a_native_user_a_profile_and_a_link(
    platform: Platform, pool: str
) -> None:
    from handlers.sign_up import pre_sign_up

    links: list[dict[str, Any]] = []
    cognito = clients.client("cognito-idp")

    def record(params: dict[str, Any], **kwargs: Any) -> Any:
        links.append(json.loads(params["body"]))
        return aws_answer({})(**kwargs)

    cognito.meta.events.register(LINK, record)
    try:
        pre_sign_up(
            event(
                pool,
                "PreSignUp_ExternalProvider",
                "Google_1234",
                email="Pat@Example.com",
                email_verified="true",
            ),
            lambda_context(),
        )
    finally:
        cognito.meta.events.unregister(LINK, record)
    (user,) = native_users(pool)
    attributes = {a["Name"]: a["Value"] for a in user["Attributes"]}
    assert attributes["email"] == "pat@example.com"
    assert attributes["email_verified"] == "true"
    assert user["UserStatus"] == "CONFIRMED"  # so "Forgot password" works for it
    assert links == [
        {
            "UserPoolId": pool,
            "DestinationUser": {
                "ProviderName": "Cognito",
                "ProviderAttributeValue": user["Username"],
            },
            "SourceUser": {
                "ProviderName": "Google",
                "ProviderAttributeName": "Cognito_Subject",
                "ProviderAttributeValue": "1234",
            },
        }
    ]
    stored = profile(platform, attributes["sub"])
    assert stored is not None
    assert (stored["tier"], stored["email"]) == ("freemium", "pat@example.com")


def test_a_verified_federated_sign_in_links_to_the_existing_native_user(platform: Platform) -> None:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    service = SignUpService(
        UserPoolGateway(cognito),
        ProfilesRepository(dynamodb, TABLES["PROFILES_TABLE"]),
        DomainScreen(),
    )
    with Stubber(cognito) as stub:
        stub.add_response(
            "list_users",
            {
                "Users": [
                    {
                        "Username": "uuid-1",
                        "UserStatus": "CONFIRMED",
                        "Attributes": [{"Name": "sub", "Value": "uuid-1"}],
                    }
                ]
            },
            {"UserPoolId": "us-east-1_pool", "Filter": 'email = "dev@example.org"', "Limit": 60},
        )
        stub.add_response(
            "admin_link_provider_for_user",
            {},
            {
                "UserPoolId": "us-east-1_pool",
                "DestinationUser": {"ProviderName": "Cognito", "ProviderAttributeValue": "uuid-1"},
                "SourceUser": {
                    "ProviderName": "GitHub",
                    "ProviderAttributeName": "Cognito_Subject",
                    "ProviderAttributeValue": "42",
                },
            },
        )
        service.pre_sign_up(
            event(
                "us-east-1_pool",
                "PreSignUp_ExternalProvider",
                "GitHub_42",
                email="dev@example.org",
                email_verified="true",
            )
        )
        stub.assert_no_pending_responses()
    linked = profile(platform, "uuid-1")
    assert linked is not None and linked["email"] == "dev@example.org"


@pytest.mark.parametrize("verified", [None, "false", "False", ""])
def test_an_unverified_federated_email_is_never_linked(
    platform: Platform, verified: str | None
) -> None:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    service = SignUpService(
        UserPoolGateway(cognito),
        ProfilesRepository(boto3.client("dynamodb", region_name=REGION), TABLES["PROFILES_TABLE"]),
        DomainScreen(),
    )
    attributes = {"email": "sam@example.com"} | (
        {"email_verified": verified} if verified is not None else {}
    )
    with Stubber(cognito) as stub:  # no call at all is expected
        service.pre_sign_up(
            event("us-east-1_pool", "PreSignUp_ExternalProvider", "GitHub_7", **attributes)
        )
        stub.assert_no_pending_responses()
    assert platform.table_items("PROFILES_TABLE") == []


def test_a_federated_sign_in_at_a_blocked_domain_is_refused_before_any_call(pool: str) -> None:
    from handlers.sign_up import pre_sign_up

    with pytest.raises(SignUpRefused):
        pre_sign_up(
            event(
                pool,
                "PreSignUp_ExternalProvider",
                "Google_9",
                email="a@yopmail.com",
                email_verified="true",
            ),
            lambda_context(),
        )
    assert native_users(pool) == []


# ---- post confirmation ---------------------------------------------------------------------


def test_post_confirmation_creates_the_freemium_profile_once_and_keeps_an_upgrade(
    platform: Platform, pool: str
) -> None:
    from handlers.sign_up import post_confirmation

    confirmed = event(
        pool,
        "PostConfirmation_ConfirmSignUp",
        "uuid-9",
        sub="uuid-9",
        email="New@Example.com",
        email_verified="true",
    )
    assert post_confirmation(confirmed, lambda_context()) == confirmed
    first = profile(platform, "uuid-9")
    assert first is not None and (first["tier"], first["email"]) == ("freemium", "new@example.com")
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=TABLES["PROFILES_TABLE"],
        Key={"userId": {"S": "uuid-9"}},
        UpdateExpression="SET tier = :t",
        ExpressionAttributeValues={":t": {"S": "personal"}},
    )
    post_confirmation(confirmed, lambda_context())  # Cognito may deliver it again
    again = profile(platform, "uuid-9")
    assert again is not None
    assert (again["tier"], again["createdAt"]) == ("personal", first["createdAt"])
    assert len(platform.table_items("PROFILES_TABLE")) == 1


def test_post_confirmation_of_an_unverified_address_stores_no_email(
    platform: Platform, pool: str
) -> None:
    from handlers.sign_up import post_confirmation

    post_confirmation(
        event(
            pool,
            "PostConfirmation_ConfirmSignUp",
            "GitHub_7",
            sub="uuid-7",
            email="sam@example.com",
        ),
        lambda_context(),
    )
    stored = profile(platform, "uuid-7")
    assert stored is not None and "email" not in stored


# ---- a sign-up through an organisation's SSO -------------------------------------------------


def _sso_organization(api: Any, platform: Platform, *, domains: tuple[str, ...] = ()) -> str:
    """Acme (tests/runtime/org_support.py), claiming `domains` for its SSO."""
    from agent_builder.repositories.sso import SsoRepository
    from tests.runtime.org_support import found

    organization_id = str(found(api)["organizationId"])
    if domains:
        SsoRepository(platform.client("dynamodb"), TABLES["ORGANIZATIONS_TABLE"]).save_settings(
            organization_id,
            {"providerName": f"org-{organization_id}", "emailDomains": list(domains)},
            previous=None,
            now_iso="2026-01-01T00:00:00.000Z",
        )
    return organization_id


def _sso_sign_up(pool_id: str, organization_id: str, sub: str, email: str) -> None:
    """Cognito's first sign-in through `org-<id>`: pre sign-up (no sub yet), then post
    confirmation of the federated user it created (local_mode/platform.py does the same)."""
    from handlers.sign_up import post_confirmation, pre_sign_up

    username = f"org-{organization_id}_{email}"
    pre_sign_up(
        event(pool_id, "PreSignUp_ExternalProvider", username, email=email), lambda_context()
    )
    post_confirmation(
        event(
            pool_id,
            "PostConfirmation_ConfirmSignUp",
            username,
            sub=sub,
            email=email,
            **{"cognito:user_status": "EXTERNAL_PROVIDER"},
        ),
        lambda_context(),
    )


def test_an_sso_sign_up_is_never_linked_even_with_a_verified_address(
    api: Any, platform: Platform, pool: str
) -> None:
    organization_id = _sso_organization(api, platform)
    cognito = boto3.client("cognito-idp", region_name=REGION)
    service = SignUpService(
        UserPoolGateway(cognito),
        ProfilesRepository(boto3.client("dynamodb", region_name=REGION), TABLES["PROFILES_TABLE"]),
        DomainScreen(),
    )
    with Stubber(cognito) as stub:  # no ListUsers, no user created, no link
        service.pre_sign_up(
            event(
                pool,
                "PreSignUp_ExternalProvider",
                f"org-{organization_id}_ann@example.com",
                email="ann@example.com",
                email_verified="true",
            )
        )
        stub.assert_no_pending_responses()
    assert native_users(pool) == []


def test_an_sso_sign_up_makes_a_member_with_the_default_role(
    api: Any, platform: Platform, pool: str
) -> None:
    from tests.runtime.support import audit_records

    organization_id = _sso_organization(api, platform, domains=("example.com",))

    _sso_sign_up(pool, organization_id, "uuid-sso-1", "Ann@Example.com")

    stored = profile(platform, "uuid-sso-1")
    assert stored is not None
    assert (stored["organizationId"], stored["role"], stored["tier"]) == (
        organization_id,
        "developer",
        "enterprise",
    )
    assert stored["email"] == "ann@example.com"  # a domain the organisation claimed
    [member] = [
        item
        for item in platform.table_items("ORGANIZATIONS_TABLE")
        if item["item"] == "member#uuid-sso-1"
    ]
    assert (member["role"], member["email"]) == ("developer", "ann@example.com")
    records = audit_records(platform, "member.join")
    assert sorted(r["scope"] for r in records) == sorted(
        ["user#uuid-sso-1", f"org#{organization_id}"]
    )
    assert {(r["via"], r["role"], r["result"]) for r in records} == {
        ("sso", "developer", "success")
    }
    me = api("GET", "/me", user="uuid-sso-1", email=None)
    assert (me.body["tier"], me.body["organizationId"], me.body["role"]) == (
        "enterprise",
        organization_id,
        "developer",
    )


def test_an_sso_address_outside_the_organisations_domains_is_not_kept(
    api: Any, platform: Platform, pool: str
) -> None:
    organization_id = _sso_organization(api, platform, domains=("example.com",))

    _sso_sign_up(pool, organization_id, "uuid-sso-2", "someone@elsewhere.example")

    stored = profile(platform, "uuid-sso-2")
    assert stored is not None and stored["organizationId"] == organization_id
    assert "email" not in stored  # an IdP may assert any address: not one to match invitations


def test_an_sso_address_opens_no_other_organisations_invitation(
    api: Any, platform: Platform, pool: str
) -> None:
    """An IdP may assert any address of the domains its organisation claimed: that address
    was never verified by the platform, so after leaving, its user cannot take another
    organisation's invitation to it; their own organisation's still works."""
    from tests.runtime.org_support import OUTSIDER, as_user, found

    organization_id = _sso_organization(api, platform, domains=("example.com",))
    _sso_sign_up(pool, organization_id, "uuid-sso-3", "ann@example.com")
    assert profile(platform, "uuid-sso-3")["emailAssertedBy"] == organization_id

    def sso_user(method: str, path: str, **kwargs: Any) -> Any:
        return api(method, path, user="uuid-sso-3", email=None, **kwargs)

    assert sso_user("DELETE", "/org/members/uuid-sso-3").status == 204  # leaves
    found(api, OUTSIDER, name="Globex")
    elsewhere = as_user(api, OUTSIDER)(
        "POST", "/org/invitations", body={"email": "ann@example.com", "role": "admin"}
    ).body["invitationId"]

    refused = sso_user("POST", f"/org/invitations/{elsewhere}/accept")

    assert refused.status == 404, refused.body
    again = api(
        "POST", "/org/invitations", body={"email": "ann@example.com", "role": "viewer"}
    ).body["invitationId"]
    assert sso_user("POST", f"/org/invitations/{again}/accept").status == 200


def test_the_organisations_default_role_is_the_new_members(
    api: Any, platform: Platform, pool: str
) -> None:
    organization_id = _sso_organization(api, platform)
    assert api("PATCH", "/org", body={"defaultRole": "viewer"}).status == 200

    _sso_sign_up(pool, organization_id, "uuid-sso-3", "vic@example.com")

    stored = profile(platform, "uuid-sso-3")
    assert stored is not None and stored["role"] == "viewer"


def test_post_confirmation_delivered_again_changes_nothing(
    api: Any, platform: Platform, pool: str
) -> None:
    from handlers.sign_up import post_confirmation
    from tests.runtime.support import audit_records

    organization_id = _sso_organization(api, platform)
    _sso_sign_up(pool, organization_id, "uuid-sso-4", "dan@example.com")
    before = platform.snapshot()

    post_confirmation(
        event(
            pool,
            "PostConfirmation_ConfirmSignUp",
            f"org-{organization_id}_dan@example.com",
            sub="uuid-sso-4",
            email="dan@example.com",
        ),
        lambda_context(),
    )

    assert platform.snapshot() == before
    assert len(audit_records(platform, "member.join")) == 2  # one event, two trails


def test_a_member_of_another_organisation_is_refused_and_nothing_changes(
    api: Any, platform: Platform, pool: str
) -> None:
    from handlers.sign_up import post_confirmation
    from tests.runtime.org_support import OUTSIDER, found

    organization_id = _sso_organization(api, platform)
    found(api, OUTSIDER, name="Other")  # the outsider founds (and is in) another one
    before = platform.snapshot()

    with pytest.raises(SignUpRefused, match="already a member of another organisation"):
        post_confirmation(
            event(
                pool,
                "PostConfirmation_ConfirmSignUp",
                f"org-{organization_id}_out@example.org",
                sub=OUTSIDER,
                email="out@example.org",
            ),
            lambda_context(),
        )
    assert platform.snapshot() == before


def test_an_sso_sign_up_of_an_organisation_that_no_longer_exists_is_refused(
    platform: Platform, pool: str
) -> None:
    from handlers.sign_up import pre_sign_up

    with pytest.raises(SignUpRefused, match="no longer exists"):
        pre_sign_up(
            event(
                pool,
                "PreSignUp_ExternalProvider",
                "org-0f0e0d0c-0000-4000-8000-0000000000ff_ann@example.com",
                email="ann@example.com",
            ),
            lambda_context(),
        )
    assert platform.table_items("PROFILES_TABLE") == []
