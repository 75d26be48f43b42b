"""The GitHub OIDC bridge against moto (KMS, DynamoDB, Secrets Manager) and the GitHub
stand-in: a token that verifies against the bridge's JWKS, and every refusal."""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from moto import mock_aws

from agent_builder import wiring
from agent_builder.oidc_bridge.signing import rsa_public_numbers
from local_mode.github_bridge import BridgeFlow
from local_mode.github_standin import GitHubStandIn
from tests.runtime.support import REGION, lambda_context

ISSUER = "https://bridge.example.com"
REDIRECT_URI = (
    "https://agent-builder-123456789012.auth.us-east-1.amazoncognito.com/oauth2/idpresponse"
)
CLIENT_ID = "agent-builder-cognito"
GITHUB_CLIENT_ID = "Iv1.standin"
TABLE = "bridge-grants"
EMAIL = "grace@example.com"


@dataclass
class Bridge:
    flow: BridgeFlow
    github: GitHubStandIn
    client_secret: str
    kms_key: str


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubStandIn]:
    standin = GitHubStandIn(client_id=GITHUB_CLIENT_ID, client_secret="github-secret-value")
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch, github: GitHubStandIn) -> Iterator[Bridge]:
    github.behaviour.__init__()  # type: ignore[misc]  # every test starts with a healthy GitHub
    with mock_aws():
        wiring.reset()
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "grantId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "grantId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sm = boto3.client("secretsmanager", region_name=REGION)
        client_secret = "cognito-client-secret-0123456789"
        secret_arn = sm.create_secret(Name="bridge-client", SecretString=client_secret)["ARN"]
        sm.create_secret(Name="agent-builder/github-oauth", SecretString=github.client_secret)
        for name, value in {
            "POWERTOOLS_SERVICE_NAME": "agent-builder-oidc-bridge",
            "BRIDGE_TABLE": TABLE,
            "BRIDGE_SIGNING_KEY_ARN": key,
            "BRIDGE_ISSUER": ISSUER,
            "BRIDGE_CLIENT_ID": CLIENT_ID,
            "BRIDGE_CLIENT_SECRET_ARN": secret_arn,
            "BRIDGE_REDIRECT_URI": REDIRECT_URI,
            "GITHUB_CLIENT_ID": GITHUB_CLIENT_ID,
            "GITHUB_CLIENT_SECRET_NAME": "agent-builder/github-oauth",
            "GITHUB_URL": github.url,
            "GITHUB_API_URL": github.url,
        }.items():
            monkeypatch.setenv(name, value)
        from handlers.oidc_bridge import handler

        flow = BridgeFlow(
            lambda event: handler(event, lambda_context("agent-builder-oidc-bridge")),
            issuer=ISSUER,
            client_id=CLIENT_ID,
            client_secret=client_secret,
            redirect_uri=REDIRECT_URI,
        )
        yield Bridge(flow=flow, github=github, client_secret=client_secret, kms_key=key)
        wiring.reset()


def query_of(location: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def test_discovery_names_the_bridge_endpoints_and_rs256(bridge: Bridge) -> None:
    answer = bridge.flow.call("GET", "/.well-known/openid-configuration").json()
    assert answer["issuer"] == ISSUER
    assert answer["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert answer["token_endpoint"] == f"{ISSUER}/token"
    assert answer["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert answer["userinfo_endpoint"] == f"{ISSUER}/userinfo"
    assert answer["id_token_signing_alg_values_supported"] == ["RS256"]


def test_jwks_is_the_kms_keys_public_key(bridge: Bridge) -> None:
    der = boto3.client("kms", region_name=REGION).get_public_key(KeyId=bridge.kms_key)["PublicKey"]
    numbers = serialization.load_der_public_key(der).public_numbers()  # type: ignore[union-attr]
    (jwk,) = bridge.flow.call("GET", "/jwks.json").json()["keys"]
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big")
    e = int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=="), "big")
    assert (n, e) == (numbers.n, numbers.e)


def test_a_der_that_is_not_an_rsa_key_is_refused() -> None:
    with pytest.raises(ValueError):
        rsa_public_numbers(b"\x30\x03\x02\x01\x01")


def test_sign_in_mints_an_id_token_that_verifies_against_the_jwks(bridge: Bridge) -> None:
    code, nonce = bridge.flow.code_for(EMAIL)
    answer = bridge.flow.token(code)
    assert answer.status == 200, answer.body
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    claims = bridge.flow.verify(body["id_token"], nonce=nonce)
    account = bridge.github.account(EMAIL)
    assert claims["sub"] == str(account.id)
    assert claims["email"] == EMAIL and claims["email_verified"] is True
    assert claims["name"] == account.name and claims["picture"] == account.avatar_url
    assert claims["iss"] == ISSUER and claims["aud"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == 300
    header = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    assert header["kid"] == bridge.flow.call("GET", "/jwks.json").json()["keys"][0]["kid"]
    # The access token opens /userinfo, with the same claims.
    info = bridge.flow.call(
        "GET", "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status == 200
    assert info.json()["sub"] == claims["sub"] and info.json()["email"] == EMAIL


def test_sign_in_returns_the_verified_claims(bridge: Bridge) -> None:
    claims = bridge.flow.sign_in(EMAIL)
    assert set(claims) == {"sub", "email", "email_verified", "name", "picture"}
    assert claims["sub"] == str(bridge.github.account(EMAIL).id)


def test_authorize_sends_github_a_state_of_its_own_and_a_pkce_challenge(bridge: Bridge) -> None:
    answer = bridge.flow.authorize(state="cognito-state", nonce="n")
    assert answer.status == 302
    assert answer.location.startswith(f"{bridge.github.url}/login/oauth/authorize?")
    query = query_of(answer.location)
    assert query["client_id"] == GITHUB_CLIENT_ID
    assert query["redirect_uri"] == f"{ISSUER}/callback"
    assert query["state"] != "cognito-state" and len(query["state"]) >= 40
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert "user:email" in query["scope"].split()


def test_callback_gives_cognito_a_bridge_code_and_its_own_state(bridge: Bridge) -> None:
    start = bridge.flow.authorize(state="cognito-state", nonce="n")
    github_back = bridge.flow.visit_github(start.location, EMAIL)
    github_code = query_of(github_back)["code"]
    back = bridge.flow.callback(github_back)
    assert back.status == 302
    assert back.location.startswith(f"{REDIRECT_URI}?")
    query = query_of(back.location)
    assert query["state"] == "cognito-state"
    assert query["code"] != github_code  # GitHub's code stays with the bridge


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"client_id": "someone-else"}, "unauthorized_client"),
        ({"redirect_uri": "https://evil.example.com/oauth2/idpresponse"}, "invalid_request"),
    ],
)
def test_authorize_refuses_another_client_or_redirect_without_redirecting(
    bridge: Bridge, override: dict[str, str], error: str
) -> None:
    answer = bridge.flow.authorize(state="s", nonce="n", **override)
    assert answer.status == 400
    assert "location" not in answer.headers
    assert answer.json()["error"] == error


def test_a_wrong_state_at_the_callback_is_refused(bridge: Bridge) -> None:
    start = bridge.flow.authorize(state="s", nonce="n")
    github_back = bridge.flow.visit_github(start.location, EMAIL)
    forged = github_back.replace(query_of(github_back)["state"], "forged-state")
    answer = bridge.flow.callback(forged)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"
    assert "state" in answer.json()["error_description"]


def test_the_state_is_single_use(bridge: Bridge) -> None:
    start = bridge.flow.authorize(state="s", nonce="n")
    github_back = bridge.flow.visit_github(start.location, EMAIL)
    assert bridge.flow.callback(github_back).status == 302
    again = bridge.flow.callback(github_back)
    assert again.status == 400 and again.json()["error"] == "invalid_request"


def test_a_replayed_code_is_refused(bridge: Bridge) -> None:
    code, _ = bridge.flow.code_for(EMAIL)
    assert bridge.flow.token(code).status == 200
    exchanged = bridge.github.exchanges
    replay = bridge.flow.token(code)
    assert replay.status == 400
    assert replay.json()["error"] == "invalid_grant"
    assert bridge.github.exchanges == exchanged  # GitHub was not asked again


def test_a_github_code_replayed_through_the_bridge_is_worth_nothing(bridge: Bridge) -> None:
    """GitHub's code, lifted from the browser, is not a bridge code, and GitHub would
    refuse it without the bridge's PKCE verifier anyway."""
    start = bridge.flow.authorize(state="s", nonce="n")
    github_back = bridge.flow.visit_github(start.location, EMAIL)
    before = bridge.github.exchanges
    answer = bridge.flow.token(query_of(github_back)["code"])
    assert answer.status == 400 and answer.json()["error"] == "invalid_grant"
    assert bridge.github.exchanges == before


def test_an_unverified_primary_email_is_refused(bridge: Bridge) -> None:
    bridge.github.behaviour.unverified_email = True
    code, _ = bridge.flow.code_for(EMAIL)
    answer = bridge.flow.token(code)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "not verified" in answer.json()["error_description"]
    assert "id_token" not in answer.body


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
def test_a_wrong_client_secret_is_refused(bridge: Bridge, secret: str) -> None:
    code, _ = bridge.flow.code_for(EMAIL)
    answer = bridge.flow.token(code, client_secret=secret)
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_client"
    # The code was not spent by the refused attempt: the right client can still use it.
    assert bridge.flow.token(code).status == 200


def test_basic_client_authentication_works_too(bridge: Bridge) -> None:
    code, _ = bridge.flow.code_for(EMAIL)
    basic = base64.b64encode(f"{CLIENT_ID}:{bridge.client_secret}".encode()).decode()
    answer = bridge.flow.call(
        "POST",
        "/token",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}",
        },
        body=urllib.parse.urlencode(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        ),
    )
    assert answer.status == 200, answer.body


def test_a_wrong_redirect_uri_at_the_token_endpoint_is_refused(bridge: Bridge) -> None:
    code, _ = bridge.flow.code_for(EMAIL)
    answer = bridge.flow.token(code, redirect_uri="https://evil.example.com/cb")
    assert answer.status == 400 and answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("how", ["failing", "slow"])
def test_github_down_is_a_clear_oauth_error_not_a_crash(
    bridge: Bridge, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = bridge.flow.code_for(EMAIL)
    if how == "failing":
        bridge.github.behaviour.failing = True
    else:
        from agent_builder.oidc_bridge import github

        monkeypatch.setattr(
            github.GitHubGateway, "__init__", _fast_timeout(github.GitHubGateway.__init__)
        )
        wiring.reset(keep_clients=True)
        bridge.github.behaviour.delay_seconds = 0.6
    answer = bridge.flow.token(code)
    assert answer.status == 503
    assert answer.headers["retry-after"] == "30"
    body = answer.json()
    assert body["error"] == "temporarily_unavailable"
    assert "GitHub" in body["error_description"] and "Traceback" not in answer.body


def _fast_timeout(original: Any) -> Any:
    def init(self: Any, **kwargs: Any) -> None:
        original(self, **{**kwargs, "timeout_seconds": 0.2})

    return init


def test_userinfo_refuses_an_unknown_token(bridge: Bridge) -> None:
    answer = bridge.flow.call("GET", "/userinfo", headers={"Authorization": "Bearer nope"})
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_token"
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_token_request_that_is_not_a_form_is_a_400(bridge: Bridge) -> None:
    answer = bridge.flow.call(
        "POST", "/token", headers={"Content-Type": "application/json"}, body="{}"
    )
    assert answer.status == 400 and answer.json()["error"] == "invalid_request"


def test_an_unknown_path_is_an_oauth_style_404(bridge: Bridge) -> None:
    answer = bridge.flow.call("GET", "/nothing-here")
    assert answer.status == 404 and answer.json()["error"] == "not_found"


def test_user_declining_on_github_goes_back_to_cognito_as_access_denied(bridge: Bridge) -> None:
    bridge.github.behaviour.deny = True
    start = bridge.flow.authorize(state="cognito-state", nonce="n")
    back = bridge.flow.callback(bridge.flow.visit_github(start.location, EMAIL))
    assert back.status == 302
    query = query_of(back.location)
    assert (query["error"], query["state"]) == ("access_denied", "cognito-state")
    assert "code" not in query


def test_no_code_token_or_secret_reaches_the_logs(
    bridge: Bridge, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the functions' level (botocore DEBUG logs request bodies)
    code, _ = bridge.flow.code_for(EMAIL)
    body = bridge.flow.token(code).json()
    bridge.flow.token(code)  # a refusal is logged
    bridge.flow.token("x", client_secret="wrong")
    logs = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert "refused" in logs
    for secret in (code, body["access_token"], body["id_token"], bridge.client_secret):
        assert secret not in logs
