"""A member's IAM Identity Center session: the device flow and role credentials.

moto has no sso / sso-oidc: botocore's Stubber answers those; KMS and DynamoDB are moto.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from agent_builder.errors import SsoNotConfigured, SsoSessionExpired, SsoUnavailable
from agent_builder.gateways.identity_center import DEVICE_GRANT, IdentityCenter
from agent_builder.gateways.token_cipher import TokenCipher
from agent_builder.repositories.sso import SsoRepository
from agent_builder.services.sso_sessions import SsoSessionService
from tests.runtime.conftest import create_tables
from tests.runtime.sso_support import ORG, START_URL
from tests.runtime.support import REGION, TABLES

USER = "6f1d2c3b-0000-4000-8000-00000000a11c"
SSO_REGION = "eu-west-1"
ACCESS_TOKEN = "aoa-SECRET-ACCESS-TOKEN-value-0123456789"
DEVICE_CODE = "device-SECRET-code-0123456789"
CLIENT_SECRET = "client-SECRET-0123456789"
SETTINGS = {
    "startUrl": START_URL,
    "ssoRegion": SSO_REGION,
    "accountId": "222233334444",
    "permissionSetRole": "AgentBuilderDeployer",
}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    service: SsoSessionService
    repository: SsoRepository
    oidc: Stubber
    sso: Stubber
    clock: Clock
    dynamodb: Any


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_tables(dynamodb)
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key(Description="sso tokens")["KeyMetadata"]["KeyId"]
        oidc_client = boto3.client("sso-oidc", region_name=SSO_REGION)
        sso_client = boto3.client("sso", region_name=SSO_REGION)
        clients = {"sso-oidc": oidc_client, "sso": sso_client}
        clock = Clock()
        repository = SsoRepository(dynamodb, TABLES["ORGANIZATIONS_TABLE"])
        service = SsoSessionService(
            repository,
            IdentityCenter(lambda service, region: clients[service]),
            TokenCipher(kms, key),
            project="agent-builder",
            clock=clock,
        )
        with Stubber(oidc_client) as oidc, Stubber(sso_client) as sso:
            yield World(service, repository, oidc, sso, clock, dynamodb)
            oidc.assert_no_pending_responses()
            sso.assert_no_pending_responses()


def _epoch(world: World, seconds: int = 0) -> int:
    return int(world.clock.now.timestamp()) + seconds


def _register(world: World, expires_in: int = 90 * 86400) -> None:
    world.oidc.add_response(
        "register_client",
        {
            "clientId": "client-1",
            "clientSecret": CLIENT_SECRET,
            "clientIdIssuedAt": _epoch(world),
            "clientSecretExpiresAt": _epoch(world, expires_in),
        },
        {"clientName": f"agent-builder-{ORG}", "clientType": "public"},
    )


def _start(world: World, interval: int = 5) -> dict[str, Any]:
    world.oidc.add_response(
        "start_device_authorization",
        {
            "deviceCode": DEVICE_CODE,
            "userCode": "ABCD-EFGH",
            "verificationUri": "https://device.sso.eu-west-1.amazonaws.com/",
            "verificationUriComplete": "https://device.sso.eu-west-1.amazonaws.com/?user_code=ABCD-EFGH",
            "expiresIn": 600,
            "interval": interval,
        },
        {"clientId": "client-1", "clientSecret": CLIENT_SECRET, "startUrl": START_URL},
    )
    return world.service.start(ORG, SETTINGS, USER)


def _token_call() -> dict[str, Any]:
    return {
        "clientId": "client-1",
        "clientSecret": CLIENT_SECRET,
        "grantType": DEVICE_GRANT,
        "deviceCode": DEVICE_CODE,
    }


def _token_error(world: World, code: str) -> None:
    world.oidc.add_client_error(
        "create_token", service_error_code=code, http_status_code=400, expected_params=_token_call()
    )


def _token_success(world: World, expires_in: int = 28800) -> None:
    world.oidc.add_response(
        "create_token",
        {"accessToken": ACCESS_TOKEN, "tokenType": "Bearer", "expiresIn": expires_in},
        _token_call(),
    )


def _session_item(world: World) -> dict[str, Any] | None:
    """The member's session as the organisations table holds it (repositories/sso.py)."""
    return world.dynamodb.get_item(
        TableName=TABLES["ORGANIZATIONS_TABLE"],
        Key={"organizationId": {"S": f"#user#{USER}"}, "item": {"S": "sso-session"}},
    ).get("Item")


def test_start_answers_the_link_and_code_and_keeps_the_device_code_encrypted(world: World) -> None:
    _register(world)
    answer = _start(world)
    assert answer == {
        "verificationUriComplete": "https://device.sso.eu-west-1.amazonaws.com/?user_code=ABCD-EFGH",
        "userCode": "ABCD-EFGH",
        "expiresAt": "2026-03-01T12:10:00.000Z",
    }
    item = _session_item(world)
    assert item is not None
    assert DEVICE_CODE not in repr(item)
    assert item["expiresAt"] == {"N": str(_epoch(world, 600))}
    assert item["purgeAt"] == item["expiresAt"]  # the table's TTL, with the code
    assert item["owner"] == {"S": ORG}
    assert world.service.status(ORG, USER).status == "pending"  # too early: no CreateToken


def test_the_client_is_registered_once_and_reused_until_it_expires(world: World) -> None:
    _register(world, expires_in=3600)
    _start(world)
    _start(world)  # the cached client: no second RegisterClient
    client_item = world.repository.sso_client(ORG, SSO_REGION)
    assert client_item is not None and CLIENT_SECRET not in repr(client_item)
    stored = world.dynamodb.get_item(
        TableName=TABLES["ORGANIZATIONS_TABLE"],
        Key={"organizationId": {"S": ORG}, "item": {"S": f"sso-client#{SSO_REGION}"}},
    )["Item"]
    assert stored["purgeAt"] == {"N": str(_epoch(world, 3600))}  # the table's TTL attribute
    world.clock.advance(3600 - 200)  # within 5 minutes of its expiry: a new one
    _register(world, expires_in=3600)
    _start(world)


def test_pending_polls_no_sooner_than_the_interval(world: World) -> None:
    _register(world)
    _start(world, interval=5)
    world.clock.advance(5)
    _token_error(world, "AuthorizationPendingException")
    assert world.service.status(ORG, USER).status == "pending"
    world.clock.advance(3)
    assert world.service.status(ORG, USER).status == "pending"  # no call: the stub has none
    world.clock.advance(2)
    _token_error(world, "AuthorizationPendingException")
    assert world.service.status(ORG, USER).status == "pending"


def test_slow_down_adds_five_seconds_to_the_interval(world: World) -> None:
    _register(world)
    _start(world, interval=5)
    world.clock.advance(5)
    _token_error(world, "SlowDownException")
    assert world.service.status(ORG, USER).status == "pending"
    world.clock.advance(9)
    assert world.service.status(ORG, USER).status == "pending"  # 10 s now: not yet
    world.clock.advance(1)
    _token_success(world)
    assert world.service.status(ORG, USER).status == "active"


def test_an_expired_code_ends_the_flow(world: World) -> None:
    _register(world)
    _start(world)
    world.clock.advance(5)
    _token_error(world, "ExpiredTokenException")
    view = world.service.status(ORG, USER)
    assert view.status == "none" and view.reason and "expired" in view.reason
    assert _session_item(world) is None


def test_a_code_past_its_expiry_is_dropped_without_calling_aws(world: World) -> None:
    _register(world)
    _start(world)
    world.clock.advance(601)
    assert world.service.status(ORG, USER).status == "none"
    assert _session_item(world) is None


def test_a_refused_sign_in_ends_the_flow(world: World) -> None:
    _register(world)
    _start(world)
    world.clock.advance(5)
    _token_error(world, "AccessDeniedException")
    view = world.service.status(ORG, USER)
    assert view.status == "none" and view.reason and "refused" in view.reason


def test_success_stores_the_token_encrypted_with_its_expiry_as_ttl(world: World) -> None:
    _register(world)
    _start(world)
    world.clock.advance(5)
    _token_success(world, expires_in=28800)
    view = world.service.status(ORG, USER)
    assert view.status == "active"
    assert view.expires_at == "2026-03-01T20:00:05.000Z"
    item = _session_item(world)
    assert item is not None
    assert ACCESS_TOKEN not in repr(item) and DEVICE_CODE not in repr(item)
    assert "deviceCode" not in item
    assert item["expiresAt"] == {"N": str(_epoch(world, 28800))}
    assert item["purgeAt"] == item["expiresAt"]  # the table's TTL, now with the token
    # The ciphertext is bound to this member: decrypting it as another user fails.
    kms = boto3.client("kms", region_name=REGION)
    blob = base64.b64decode(item["accessToken"]["S"])
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(
            CiphertextBlob=blob,
            EncryptionContext={
                "purpose": "sso-access-token",
                "organizationId": ORG,
                "userId": "someone-else",
            },
        )


def _activate(world: World) -> None:
    _register(world)
    _start(world)
    world.clock.advance(5)
    _token_success(world)
    assert world.service.status(ORG, USER).status == "active"


def _role_credentials(world: World) -> None:
    world.sso.add_response(
        "get_role_credentials",
        {
            "roleCredentials": {
                "accessKeyId": "ASIAEXAMPLE",
                "secretAccessKey": "secret",
                "sessionToken": "session",
                "expiration": (_epoch(world) + 3600) * 1000,
            }
        },
        {
            "accessToken": ACCESS_TOKEN,
            "accountId": "222233334444",
            "roleName": "AgentBuilderDeployer",
        },
    )


def test_role_credentials_come_from_get_role_credentials_with_the_token(world: World) -> None:
    _activate(world)
    _role_credentials(world)
    session = world.service.deployment_session(ORG, SETTINGS, USER, region="eu-central-1")
    assert session is not None and session.region == "eu-central-1"
    ecs = session.client("ecs")
    assert ecs.meta.region_name == "eu-central-1"
    assert ecs._request_signer._credentials.access_key == "ASIAEXAMPLE"


def test_an_expired_session_is_none_and_dropped(world: World) -> None:
    _activate(world)
    world.clock.advance(28801)
    view = world.service.status(ORG, USER)
    assert view.status == "none" and view.reason and "expired" in view.reason
    assert world.service.deployment_session(ORG, SETTINGS, USER, region="eu-west-1") is None


def test_an_active_session_past_its_expiry_is_409_for_a_deployment_and_dropped(
    world: World,
) -> None:
    _activate(world)
    world.clock.advance(28801)
    with pytest.raises(SsoSessionExpired, match="deploy again without one"):
        world.service.deployment_session(ORG, SETTINGS, USER, region="eu-west-1")
    assert _session_item(world) is None
    # Told once: the next deployment has no session (and goes through the account role).
    assert world.service.active_session(ORG, USER) is None


def test_a_pending_flow_is_no_session_for_a_deployment(world: World) -> None:
    _register(world)
    _start(world)
    assert world.service.active_session(ORG, USER) is None
    assert _session_item(world) is not None  # the flow goes on


def test_a_token_aws_no_longer_accepts_is_409_and_drops_the_session(world: World) -> None:
    _activate(world)
    world.sso.add_client_error(
        "get_role_credentials", service_error_code="UnauthorizedException", http_status_code=401
    )
    with pytest.raises(SsoSessionExpired):
        world.service.deployment_session(ORG, SETTINGS, USER, region="eu-west-1")
    assert _session_item(world) is None


def test_no_permission_set_assignment_is_a_clear_refusal(world: World) -> None:
    _activate(world)
    world.sso.add_client_error(
        "get_role_credentials", service_error_code="ForbiddenException", http_status_code=403
    )
    with pytest.raises(SsoUnavailable, match="AgentBuilderDeployer"):
        world.service.deployment_session(ORG, SETTINGS, USER, region="eu-west-1")


def test_without_settings_the_flow_cannot_start(world: World) -> None:
    with pytest.raises(SsoNotConfigured):
        world.service.start(ORG, None, USER)


def test_a_session_of_another_organisation_is_not_this_ones(world: World) -> None:
    _activate(world)
    assert world.service.status("another-org", USER).status == "none"
    assert world.service.active_session("another-org", USER) is None


def test_drop_forgets_the_session(world: World) -> None:
    _activate(world)
    world.service.drop(USER)
    assert world.service.status(ORG, USER).status == "none"


def test_tokens_never_reach_a_log_record(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _activate(world)
    _role_credentials(world)
    world.service.deployment_session(ORG, SETTINGS, USER, region="eu-west-1")
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert caplog.records  # the flow does log: what it logs holds no secret
    for secret in (ACCESS_TOKEN, DEVICE_CODE, CLIENT_SECRET):
        assert secret not in logged
