"""Sign-in as deployed (Cognito's hosted page, authorization code + PKCE, refresh, sign-out)
and the API's refusals, in Chromium against local mode.

The hosted sign-in domain is played by Playwright routes (Cognito is not emulated at the
HTTP level): they check what the console sends (PKCE challenge and verifier, state,
redirect URI, refresh token, revocation) and answer as Cognito does, with a real local
access token, so the API calls that follow are real. The refusals (paused free tier,
capacity, rate limit) are answered by a route in front of the real API, with the
contract's codes and Retry-After.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from local_mode.harness import LocalMode
from tests.web.conftest import sign_in

pytestmark = pytest.mark.web

SIGN_IN_DOMAIN = "https://auth.example.test"
CLIENT_ID = "console-client-id"
CORS = {"access-control-allow-origin": "*", "content-type": "application/json"}


def id_token(email: str) -> str:
    """Shaped like a JWT: the console reads (never trusts) the e-mail from it."""
    part = base64.urlsafe_b64encode(json.dumps({"email": email}).encode()).decode().rstrip("=")
    return f"e30.{part}.c2ln"


def test_hosted_sign_in_with_pkce_then_refresh_and_sign_out(
    browser: Any, local_mode: LocalMode
) -> None:
    email = "hosted@example.com"
    access = local_mode.request("POST", "/_local/sign-in", body={"email": email}).body[
        "accessToken"
    ]
    seen: dict[str, Any] = {"token": [], "revoke": [], "authorizations": []}
    config = {
        "mode": "cognito",
        "apiUrl": local_mode.url,
        "region": local_mode.info["region"],
        "cognito": {
            "domain": SIGN_IN_DOMAIN,
            "clientId": CLIENT_ID,
            "scopes": ["openid", "email", "profile", "agent-builder-api/api"],
        },
        "allowedModels": ["amazon.nova-micro-v1:0"],
        "maxOutputTokens": 1024,
    }
    # The console's CSP allows only its own origin here (local mode's); the routed
    # stand-in for the sign-in domain is another origin, so this context bypasses it.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.route(
        f"{local_mode.url}/config.json",
        lambda route: route.fulfill(status=200, json=config),
    )

    def authorize(route: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(route.request.url).query).items()}
        seen["authorizations"].append(query)
        back = f"{query['redirect_uri']}?code=the-code&state={query['state']}"
        route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<meta http-equiv="refresh" content="0;url={back}">',
        )

    def token(route: Any) -> None:
        form = {k: v[0] for k, v in parse_qs(route.request.post_data or "").items()}
        seen["token"].append(form)
        route.fulfill(
            status=200,
            headers=CORS,
            body=json.dumps(
                {
                    "access_token": access,
                    "id_token": id_token(email),
                    "refresh_token": "the-refresh-token",
                    "expires_in": 3600,
                    "token_type": "Bearer",
                }
            ),
        )

    def revoke(route: Any) -> None:
        seen["revoke"].append(parse_qs(route.request.post_data or ""))
        route.fulfill(status=200, headers=CORS, body="")

    def logout(route: Any) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        seen["logout"] = query
        back = query["logout_uri"][0]
        route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<meta http-equiv="refresh" content="0;url={back}">',
        )

    page.route(f"{SIGN_IN_DOMAIN}/oauth2/authorize*", authorize)
    page.route(f"{SIGN_IN_DOMAIN}/oauth2/token", token)
    page.route(f"{SIGN_IN_DOMAIN}/oauth2/revoke", revoke)
    page.route(f"{SIGN_IN_DOMAIN}/logout*", logout)
    bearer: list[str] = []
    page.on(
        "request",
        lambda r: (
            bearer.append(r.headers.get("authorization", ""))
            if r.url.startswith(f"{local_mode.url}/me")
            else None
        ),
    )

    page.goto(local_mode.url + "/")
    page.get_by_role("button", name="Sign in or sign up").click()
    page.get_by_role("heading", name="Agents").wait_for()

    (asked,) = seen["authorizations"]
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == f"{local_mode.url}/"
    assert asked["scope"] == "openid email profile agent-builder-api/api"
    (exchange,) = seen["token"]
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "the-code"
    assert exchange["redirect_uri"] == asked["redirect_uri"]
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).decode().rstrip("=") == asked["code_challenge"]
    assert "code=" not in page.url  # the code does not stay in the address bar
    assert bearer and all(value == f"Bearer {access}" for value in bearer)  # never the ID token

    # An access token about to expire is renewed with the refresh token.
    page.evaluate(
        """() => {
          const key = 'agent-builder.session';
          const s = JSON.parse(sessionStorage.getItem(key));
          s.expiresAt = Date.now();
          sessionStorage.setItem(key, JSON.stringify(s));
        }"""
    )
    page.reload()
    page.get_by_role("heading", name="Agents").wait_for()
    assert [t["grant_type"] for t in seen["token"]] == ["authorization_code", "refresh_token"]
    assert seen["token"][1]["refresh_token"] == "the-refresh-token"

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in or sign up").wait_for()
    assert seen["revoke"] == [{"token": ["the-refresh-token"], "client_id": [CLIENT_ID]}]
    assert seen["logout"]["client_id"] == [CLIENT_ID]
    context.close()


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "expected"),
    [
        (503, "FREE_TIER_PAUSED", "3600", "The free tier is paused"),
        (503, "CAPACITY_EXHAUSTED", "30", "as many tests as it allows at once"),
        (429, "RATE_LIMITED", "20", "Too many launches"),
    ],
)
def test_refusals_say_what_they_mean_and_when_to_retry(
    page: Any, status: int, code: str, retry_after: str, expected: str
) -> None:
    sign_in(page, "refused@example.com")
    if not page.get_by_role("link", name="refusable").count():
        page.get_by_label("Name", exact=True).fill("refusable")
        page.get_by_label("Instructions", exact=True).fill("Be brief.")
        page.get_by_role("button", name="Create agent").click()
    else:
        page.get_by_role("link", name="refusable").click()
    page.get_by_role("heading", name="refusable").wait_for()
    message = f"the platform says {code.lower()}"
    page.route(
        "**/agents/*/tests",
        lambda route: route.fulfill(
            status=status,
            headers={"retry-after": retry_after, "content-type": "application/json"},
            body=json.dumps({"error": {"code": code, "message": message}}),
        ),
    )
    page.get_by_role("button", name="Test", exact=True).click()
    alert = page.get_by_role("alert").filter(has_text=expected)
    alert.wait_for()
    text = alert.inner_text()
    assert message in text  # the API's own message, as sent
    seconds = int(retry_after)
    when = f"in {seconds} s" if seconds < 90 else f"in {round(seconds / 60)} min"
    assert f"Try again {when}" in text, text
