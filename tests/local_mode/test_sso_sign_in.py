"""Local mode signs in through an organisation's SAML IdP (`provider: org-<id>`) with the
same Cognito triggers as AWS: the first sign-in makes the user a member of that
organisation (local_mode/federation.py, services/sign_up.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_mode.assembly import CDK_OUT, synthesized
from local_mode.harness import free_port
from local_mode.platform import LocalPlatform, Options
from tests.local_mode.test_github_sign_in import _call

pytestmark = pytest.mark.local_mode


@pytest.fixture(scope="module")
def local() -> Iterator[LocalPlatform]:
    platform = LocalPlatform(
        Options(cdk_out=synthesized(CDK_OUT), aws_port=free_port(), api_port=free_port())
    )
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


def _organisation_with_sso(local: LocalPlatform, domain: str) -> str:
    """An organisation founded over the API, with its SAML IdP in the emulated pool and
    `domain` claimed, as PUT /org/sso leaves them (that route is wired elsewhere)."""
    from agent_builder.repositories.sso import SsoRepository
    from tests.runtime.sso_support import metadata_xml

    admin = _call(local, "POST", "/_local/sign-in", body={"email": f"admin@{domain}"})
    organization = _call(local, "POST", "/org", body={"name": "Acme"}, token=admin["accessToken"])
    organization_id = str(organization["organizationId"])
    local.emulator.client("cognito-idp").create_identity_provider(
        UserPoolId=local.user_pool_id,
        ProviderName=f"org-{organization_id}",
        ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata_xml()},
        AttributeMapping={"email": "email", "name": "name"},
        IdpIdentifiers=[domain],
    )
    SsoRepository(
        local.emulator.client("dynamodb"), local.environment["ORGANIZATIONS_TABLE"]
    ).save_settings(
        organization_id,
        {"providerName": f"org-{organization_id}", "emailDomains": [domain]},
        previous=None,
        now_iso="2026-01-01T00:00:00.000Z",
    )
    return organization_id


def test_a_first_sso_sign_in_makes_a_member_of_the_organisation(local: LocalPlatform) -> None:
    organization_id = _organisation_with_sso(local, "corp.example")

    tokens = _call(
        local,
        "POST",
        "/_local/sign-in",
        body={"email": "Ann@corp.example", "provider": f"org-{organization_id}"},
    )
    me = _call(local, "GET", "/me", token=tokens["accessToken"])

    assert (me["tier"], me["organizationId"], me["role"]) == (
        "enterprise",
        organization_id,
        "developer",
    )
    assert me["email"] == "ann@corp.example"
    # Signing in again is the same user, still a member (no trigger runs a second time).
    again = _call(
        local,
        "POST",
        "/_local/sign-in",
        body={"email": "ann@corp.example", "provider": f"org-{organization_id}"},
    )
    assert _call(local, "GET", "/me", token=again["accessToken"])["userId"] == me["userId"]
    members = _call(local, "GET", "/org/members", token=tokens["accessToken"])["members"]
    assert me["userId"] in {member["userId"] for member in members}
