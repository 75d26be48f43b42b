"""Local mode's IAM Identity Center: boto3's own sso-oidc and sso clients, pointed at the
local API port, complete the device flow and get an emulated account's role credentials."""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from agent_builder.gateways.identity_center import ACTIVE, DENIED, PENDING, IdentityCenter
from local_mode.emulator import FAKE_CREDENTIALS, MotoEmulator
from local_mode.gateway import ApiDefinition, Cors, Gateway, LocalServices
from local_mode.harness import free_port
from local_mode.http_server import serve
from local_mode.identity_center import IdentityCenterStandIn
from local_mode.jwt_check import Authorizer, JwtVerifier

pytestmark = pytest.mark.local_mode

REGION = "us-east-1"
ORG_ACCOUNT = "444455556666"
START_URL = "https://d-1234567890.awsapps.com/start"


@pytest.fixture(scope="module")
def emulator() -> Iterator[MotoEmulator]:
    aws = MotoEmulator(free_port(), REGION)
    aws.start()
    yield aws
    aws.stop()


@pytest.fixture(scope="module")
def local(emulator: MotoEmulator) -> Iterator[tuple[str, IdentityCenterStandIn]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    center = IdentityCenterStandIn(base_url=base, credentials_in=emulator.credentials_in)
    gateway = Gateway(
        ApiDefinition(routes=[], cors=Cors(), api_id="local", account_id="123456789012"),
        JwtVerifier(Authorizer("https://issuer", ("client",), "authorization"), "http://unused"),
        lambda handler, event: None,
        LocalServices(
            sign_in=lambda email: {},
            openapi_path=Path("/nonexistent"),
            deliver_sns=lambda topic, message: None,
            info=dict,
            identity_center=center,
        ),
    )
    gateway.ready.set()
    httpd = serve(gateway, port)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base, center
    httpd.shutdown()
    httpd.server_close()


def _client(service: str, center: IdentityCenterStandIn) -> Any:
    endpoint = center.endpoints()[
        "AWS_ENDPOINT_URL_SSO_OIDC" if service == "sso-oidc" else "AWS_ENDPOINT_URL_SSO"
    ]
    session: Any = boto3.session.Session(region_name=REGION)
    return session.client(
        service,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _approve(url: str, decision: str = "approve") -> str:
    # The local server's own http:// URL (the stand-in's approval page).
    page = urllib.request.urlopen(url, timeout=5).read().decode()  # noqa: S310
    assert "Approve" in page and "Deny" in page
    user_code = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["user_code"][0]
    form = urllib.parse.urlencode({"user_code": user_code, "decision": decision}).encode()
    approval = urllib.request.Request(url.split("?")[0], data=form, method="POST")  # noqa: S310
    answer = urllib.request.urlopen(approval, timeout=5)  # noqa: S310
    return str(answer.read().decode())


def test_boto3_completes_the_device_flow_and_gets_the_accounts_credentials(
    local: tuple[str, IdentityCenterStandIn], emulator: MotoEmulator
) -> None:
    base, center = local
    oidc, sso = _client("sso-oidc", center), _client("sso", center)
    client = oidc.register_client(clientName="agent-builder-org", clientType="public")
    flow = oidc.start_device_authorization(
        clientId=client["clientId"], clientSecret=client["clientSecret"], startUrl=START_URL
    )
    assert flow["verificationUriComplete"].startswith(f"{base}/_local/sso/approve?user_code=")
    token_request = {
        "clientId": client["clientId"],
        "clientSecret": client["clientSecret"],
        "grantType": "urn:ietf:params:oauth:grant-type:device_code",
        "deviceCode": flow["deviceCode"],
    }
    with pytest.raises(oidc.exceptions.AuthorizationPendingException):
        oidc.create_token(**token_request)
    with pytest.raises(oidc.exceptions.SlowDownException):
        oidc.create_token(**token_request)  # faster than the interval
    assert "approved" in _approve(flow["verificationUriComplete"])
    token = oidc.create_token(**token_request)
    assert token["expiresIn"] == 8 * 3600

    role = sso.get_role_credentials(
        accessToken=token["accessToken"], accountId=ORG_ACCOUNT, roleName="AgentBuilderDeployer"
    )["roleCredentials"]
    identity = emulator.client(
        "sts",
        credentials={
            "aws_access_key_id": role["accessKeyId"],
            "aws_secret_access_key": role["secretAccessKey"],
            "aws_session_token": role["sessionToken"],
        },
    ).get_caller_identity()
    assert identity["Account"] == ORG_ACCOUNT


def test_a_denied_request_and_an_unknown_token_are_refused(
    local: tuple[str, IdentityCenterStandIn],
) -> None:
    _, center = local
    oidc, sso = _client("sso-oidc", center), _client("sso", center)
    client = oidc.register_client(clientName="agent-builder-org", clientType="public")
    flow = oidc.start_device_authorization(
        clientId=client["clientId"], clientSecret=client["clientSecret"], startUrl=START_URL
    )
    assert "denied" in _approve(flow["verificationUriComplete"], "deny")
    with pytest.raises(oidc.exceptions.AccessDeniedException):
        oidc.create_token(
            clientId=client["clientId"],
            clientSecret=client["clientSecret"],
            grantType="urn:ietf:params:oauth:grant-type:device_code",
            deviceCode=flow["deviceCode"],
        )
    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.get_role_credentials(accessToken="forged", accountId=ORG_ACCOUNT, roleName="R")


def test_the_platforms_gateway_runs_unchanged_against_the_stand_in(
    local: tuple[str, IdentityCenterStandIn],
) -> None:
    """agent_builder's IdentityCenter gateway, its clients pointed here as
    AWS_ENDPOINT_URL_SSO_OIDC / _SSO point them in local mode."""
    _, center = local
    gateway = IdentityCenter(lambda service, region: _client(service, center))
    client = gateway.register_client(REGION, "agent-builder-org")
    flow = gateway.start_device_authorization(REGION, client, START_URL, now=0)
    assert gateway.create_token(REGION, client, flow.device_code).status == PENDING
    center.approve(flow.user_code)
    answer = gateway.create_token(REGION, client, flow.device_code)
    assert answer.status == ACTIVE and answer.access_token
    credentials = gateway.role_credentials(
        REGION, answer.access_token, account_id=ORG_ACCOUNT, role_name="AgentBuilderDeployer"
    )
    assert credentials["AccessKeyId"] and credentials["SessionToken"]
    # And a denial reads as one.
    second = gateway.start_device_authorization(REGION, client, START_URL, now=0)
    center.approve(second.user_code, decision="deny")
    assert gateway.create_token(REGION, client, second.device_code).status == DENIED
