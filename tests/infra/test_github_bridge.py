"""GitHub sign-in through the OIDC bridge: present with githubClientId and
githubClientSecretName, absent without; least privilege, and the quality gates on the
configured app are in test_quality_gates.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from agent_builder.settings import HANDLER_ENVIRONMENT
from stacks.config import ConfigError, PlatformConfig
from tests.infra.conftest import GITHUB_CONTEXT as GITHUB
from tests.infra.conftest import Synthesized, default_context, identity_provider


@pytest.fixture(scope="module")
def configured(configured_app: Synthesized) -> Synthesized:
    """Every sign-in provider configured (conftest.CONFIGURED_SIGN_IN, GitHub included);
    cdk-nag, cfn-lint and checkov check it in test_quality_gates.py."""
    return configured_app


@pytest.fixture(scope="module")
def identity(configured: Synthesized) -> Template:
    return configured.template(configured.platform.identity)


def resources_of(template: Template, kind: str) -> dict[str, Any]:
    return template.find_resources(kind)


def test_without_github_settings_there_is_no_bridge_and_no_provider(
    default_app: Synthesized,
) -> None:
    template = default_app.template(default_app.platform.identity)
    for kind in (
        "AWS::Cognito::UserPoolIdentityProvider",
        "AWS::KMS::Key",
        "AWS::ApiGatewayV2::Api",
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
    ):
        template.resource_count_is(kind, 0)
    # The stack's one function is the org-* provider reconcile (test_idp_reconcile.py).
    handlers = [
        f["Properties"]["Handler"] for f in resources_of(template, "AWS::Lambda::Function").values()
    ]
    assert handlers == ["handlers.idp_reconcile.handler"]
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient", {"SupportedIdentityProviders": ["COGNITO"]}
    )


@pytest.mark.parametrize("given", ["githubClientId", "githubClientSecretName"])
def test_one_github_setting_without_the_other_fails_naming_the_missing_key(given: str) -> None:
    context = default_context() | {given: GITHUB[given]}
    missing = next(key for key in GITHUB if key != given)
    with pytest.raises(ConfigError, match=rf"^{missing}: required when {given} is set"):
        PlatformConfig.from_context(context.get)


def test_a_malformed_github_client_id_is_refused() -> None:
    context = default_context() | GITHUB | {"githubClientId": "has spaces"}
    with pytest.raises(ConfigError, match=r"^githubClientId"):
        PlatformConfig.from_context(context.get)


def test_the_github_provider_is_oidc_at_the_bridge_with_the_mapped_claims(
    identity: Template,
) -> None:
    api = next(iter(resources_of(identity, "AWS::ApiGatewayV2::Api")))
    endpoint = {"Fn::GetAtt": [api, "ApiEndpoint"]}
    identity.has_resource_properties(
        "AWS::Cognito::UserPoolIdentityProvider",
        {
            "ProviderName": "GitHub",
            "ProviderType": "OIDC",
            "AttributeMapping": {
                "email": "email",
                "email_verified": "email_verified",
                "name": "name",
                "picture": "picture",
            },
            "ProviderDetails": Match.object_like(
                {
                    "oidc_issuer": endpoint,
                    "authorize_scopes": "openid email profile",
                    "attributes_request_method": "GET",
                    "client_id": "agent-builder-cognito",
                    "jwks_uri": {"Fn::Join": ["", [endpoint, "/jwks.json"]]},
                }
            ),
        },
    )


def test_the_providers_client_secret_is_a_dynamic_reference_never_a_value(
    identity: Template, configured: Synthesized
) -> None:
    _, provider = identity_provider(identity, "OIDC")
    secret = provider["Properties"]["ProviderDetails"]["client_secret"]
    (secret_id,) = resources_of(identity, "AWS::SecretsManager::Secret")
    assert secret == {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret_id}, ":SecretString:::}}"]]
    }
    # The owner's GitHub secret appears by name only, in no template as a value.
    text = "".join(path.read_text() for path in configured.template_files())
    assert "agent-builder/github-oauth" in text
    assert 'SecretString": "' not in text


def test_the_web_client_offers_github(identity: Template) -> None:
    provider, _ = identity_provider(identity, "OIDC")
    identity.has_resource(
        "AWS::Cognito::UserPoolClient",
        {
            "Properties": Match.object_like(
                {"SupportedIdentityProviders": Match.array_with(["COGNITO", {"Ref": provider}])}
            ),
            "DependsOn": Match.array_with([provider]),
        },
    )


def test_the_signing_key_is_rsa_and_only_the_bridge_may_sign(identity: Template) -> None:
    (key,) = resources_of(identity, "AWS::KMS::Key").values()
    assert key["Properties"]["KeySpec"] == "RSA_2048"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    (role_id,) = [
        lid
        for lid, r in resources_of(identity, "AWS::IAM::Role").items()
        if "GitHubOidcBridge" in lid
    ]
    deny = next(s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Effect"] == "Deny")
    assert deny["Action"] == "kms:Sign"
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [role_id, "Arn"]}}
    }


def test_the_bridge_function_may_sign_read_its_grants_and_its_two_secrets_only(
    identity: Template,
) -> None:
    (policy,) = [
        p
        for lid, p in resources_of(identity, "AWS::IAM::Policy").items()
        if "GitHubOidcBridge" in lid
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "kms:Sign",
        "kms:GetPublicKey",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert {a for s in wildcard for a in s["Action"]} <= {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    rendered = json.dumps(statements)
    assert "secret:agent-builder/github-oauth-??????" in rendered


def test_the_grants_table_expires_its_records(identity: Template) -> None:
    identity.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "grantId", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_the_bridge_api_throttles_each_route_and_writes_access_logs(identity: Template) -> None:
    identity.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "AccessLogSettings": Match.object_like({"DestinationArn": Match.any_value()}),
            "DefaultRouteSettings": {"ThrottlingBurstLimit": 40, "ThrottlingRateLimit": 20},
            "RouteSettings": {
                key: {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}
                for key in ("GET /authorize", "GET /callback", "POST /token")
            },
        },
    )
    keys = {
        r["Properties"]["RouteKey"]
        for r in resources_of(identity, "AWS::ApiGatewayV2::Route").values()
    }
    assert keys == {
        "GET /.well-known/openid-configuration",
        "GET /jwks.json",
        "GET /authorize",
        "GET /callback",
        "POST /token",
        "GET /userinfo",
    }


def test_the_bridge_function_gets_exactly_the_environment_its_handler_reads(
    identity: Template,
) -> None:
    (function,) = [
        f
        for f in resources_of(identity, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "handlers.oidc_bridge.handler"
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert set(variables) == HANDLER_ENVIRONMENT["handlers.oidc_bridge"]
    assert variables["GITHUB_CLIENT_ID"] == GITHUB["githubClientId"]
    assert variables["GITHUB_URL"] == "https://github.com"
    assert variables["BRIDGE_REDIRECT_URI"] == {
        "Fn::Join": [
            "",
            [
                "https://agent-builder-",
                {"Ref": "AWS::AccountId"},
                ".auth.",
                {"Ref": "AWS::Region"},
                ".amazoncognito.com/oauth2/idpresponse",
            ],
        ]
    }
