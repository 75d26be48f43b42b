"""Sign-in journeys: one person, one user across e-mail, Google and GitHub; screening;
access tokens only (local mode with a GitHub double, tests/e2e/github_double.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_mode.harness import LocalMode
from tests.e2e.conftest import running_local_mode

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    yield from running_local_mode(tmp_path_factory, module="tests.e2e.github_double")


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def me(local: LocalMode, email: str, provider: str | None = None) -> dict[str, Any]:
    answer = local.request("GET", "/me", token=local.sign_in(email, provider))
    assert answer.status == 200, answer.body
    return dict(answer.body)


def test_an_id_token_answers_401_and_the_access_token_opens_the_api(local_mode: LocalMode) -> None:
    tokens = local_mode.sign_in_tokens("tokens@example.com")
    refused = local_mode.request("GET", "/me", token=tokens["idToken"])
    assert refused.status == 401
    assert refused.body == {"message": "Unauthorized"}
    assert "access token" in refused.headers["www-authenticate"]
    assert local_mode.request("GET", "/me", token=tokens["accessToken"]).status == 200


def test_the_access_token_carries_the_api_scope_like_a_hosted_ui_token(
    local_mode: LocalMode,
) -> None:
    tokens = local_mode.sign_in_tokens("scope@example.com")
    access = claims(tokens["accessToken"])
    assert access["token_use"] == "access"
    assert access["client_id"] == local_mode.info["clientId"]
    assert set(access["scope"].split()) == {"openid", "email", "profile", "agent-builder-api/api"}
    assert "email" not in access
    assert claims(tokens["idToken"])["token_use"] == "id"


def test_google_then_email_for_the_same_address_is_one_user(local_mode: LocalMode) -> None:
    google = me(local_mode, "Pat@Example.com", "google")
    email = me(local_mode, "pat@example.com")
    assert google["userId"] == email["userId"]
    # The access token has no e-mail: the profile the trigger wrote holds it.
    assert email["email"] == "pat@example.com"
    assert email["tier"] == "freemium"


def test_github_first_then_email_then_google_is_one_user(local_mode: LocalMode) -> None:
    github = me(local_mode, "dev@example.org", "github")
    again = me(local_mode, "dev@example.org", "github")
    email = me(local_mode, "dev@example.org")
    google = me(local_mode, "dev@example.org", "google")
    assert github["userId"] == again["userId"] == email["userId"] == google["userId"]


def test_email_first_then_github_links_to_the_email_user(local_mode: LocalMode) -> None:
    email = me(local_mode, "first-email@example.org")
    github = me(local_mode, "first-email@example.org", "github")
    assert github["userId"] == email["userId"]


def test_an_unverified_federated_email_is_never_linked(local_mode: LocalMode) -> None:
    email = me(local_mode, "sam@unverified.example")
    github = me(local_mode, "sam@unverified.example", "github")
    assert github["userId"] != email["userId"]
    assert github["email"] is None  # the profile holds verified addresses only


@pytest.mark.parametrize("provider", [None, "google", "github"])
def test_a_blocked_domain_is_refused_with_a_clear_error(
    local_mode: LocalMode, provider: str | None
) -> None:
    body: dict[str, Any] = {"email": "someone@mailinator.com"}
    if provider:
        body["provider"] = provider
    answer = local_mode.request("POST", "/_local/sign-in", body=body)
    assert answer.status == 400
    assert answer.body["error"]["code"] == "SIGN_UP_REFUSED"
    assert "mailinator.com" in answer.body["error"]["message"]
    assert answer.body["error"]["message"].startswith("PreSignUp failed with error")


def test_an_organisation_without_an_identity_provider_is_refused(local_mode: LocalMode) -> None:
    answer = local_mode.request(
        "POST", "/_local/sign-in", body={"email": "a@corp.example", "provider": "org-nope"}
    )
    assert answer.status == 404
    assert answer.body["error"]["code"] == "IDENTITY_PROVIDER_NOT_FOUND"


def test_an_unknown_provider_is_a_400(local_mode: LocalMode) -> None:
    answer = local_mode.request(
        "POST", "/_local/sign-in", body={"email": "a@example.com", "provider": "myspace"}
    )
    assert answer.status == 400
    assert answer.body["error"]["code"] == "VALIDATION_ERROR"
