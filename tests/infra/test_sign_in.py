"""Sign-in infrastructure (issue 11): Google IdP from config, access tokens only, and the
sign-up triggers, in the default and the configured synth (conftest: CONFIGURED_SIGN_IN)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from stacks.config import ConfigError, PlatformConfig
from tests.infra.conftest import Synthesized, default_context, identity_provider

API_SCOPE = "agent-builder-api/api"


def identity(app: Synthesized) -> Any:
    return app.template(app.platform.identity)


def control_plane(app: Synthesized) -> Any:
    return app.template(app.platform.control_plane)


def test_without_google_keys_there_is_no_google_identity_provider(default_app: Synthesized) -> None:
    template = identity(default_app)
    template.resource_count_is("AWS::Cognito::UserPoolIdentityProvider", 0)
    client = next(iter(template.find_resources("AWS::Cognito::UserPoolClient").values()))
    assert client["Properties"]["SupportedIdentityProviders"] == ["COGNITO"]


def test_google_identity_provider_maps_email_verified_name_picture(
    configured_app: Synthesized,
) -> None:
    identity(configured_app).has_resource_properties(
        "AWS::Cognito::UserPoolIdentityProvider",
        {
            "ProviderName": "Google",
            "ProviderType": "Google",
            "ProviderDetails": Match.object_like(
                {
                    "client_id": "123456789012-abcdefghijklmnop.apps.googleusercontent.com",
                    "authorize_scopes": "openid email profile",
                }
            ),
            "AttributeMapping": {
                "email": "email",
                "email_verified": "email_verified",
                "name": "name",
                "picture": "picture",
            },
        },
    )


def test_google_client_secret_is_a_secrets_manager_dynamic_reference(
    configured_app: Synthesized,
) -> None:
    _, provider = identity_provider(identity(configured_app), "Google")
    secret = json.dumps(provider["Properties"]["ProviderDetails"]["client_secret"])
    assert "{{resolve:secretsmanager:agent-builder/google-client-secret:SecretString:::}}" in secret


def test_the_web_client_supports_google_once_configured_and_waits_for_it(
    configured_app: Synthesized,
) -> None:
    template = identity(configured_app)
    provider_id, _ = identity_provider(template, "Google")
    client = next(iter(template.find_resources("AWS::Cognito::UserPoolClient").values()))
    # A Ref to the provider: its name, and CloudFormation creates it first.
    supported = client["Properties"]["SupportedIdentityProviders"]
    assert supported[0] == "COGNITO" and {"Ref": provider_id} in supported
    assert provider_id in client["DependsOn"]


@pytest.mark.parametrize("missing", ["googleClientId", "googleClientSecretName"])
def test_google_keys_are_set_together_and_the_error_names_the_missing_one(missing: str) -> None:
    context = default_context() | {
        "googleClientId": "1-a.apps.googleusercontent.com",
        "googleClientSecretName": "google-secret",
        missing: "",
    }
    with pytest.raises(ConfigError, match=missing):
        PlatformConfig.from_context(context.get)


def test_blocked_email_domains_must_be_domains() -> None:
    context = default_context() | {"blockedEmailDomains": ["not a domain"]}
    with pytest.raises(ConfigError, match="blockedEmailDomains"):
        PlatformConfig.from_context(context.get)


@pytest.mark.parametrize("app", ["default_app", "configured_app"])
def test_the_web_client_asks_for_the_api_scope(app: str, request: pytest.FixtureRequest) -> None:
    template = identity(request.getfixturevalue(app))
    (server_id,) = template.find_resources(
        "AWS::Cognito::UserPoolResourceServer", {"Properties": {"Identifier": "agent-builder-api"}}
    )
    template.has_resource_properties(
        "AWS::Cognito::UserPoolResourceServer",
        {"Scopes": [Match.object_like({"ScopeName": "api"})]},
    )
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "AllowedOAuthScopes": [
                "openid",
                "email",
                "profile",
                {"Fn::Join": ["", [{"Ref": server_id}, "/api"]]},
            ],
            "AllowedOAuthFlows": ["code"],
        },
    )


def test_every_route_requires_the_api_scope_so_id_tokens_are_refused(
    default_app: Synthesized,
) -> None:
    routes = control_plane(default_app).find_resources("AWS::ApiGatewayV2::Route")
    assert routes
    for key, route in routes.items():
        assert route["Properties"]["AuthorizationScopes"] == [API_SCOPE], key
        assert route["Properties"]["AuthorizationType"] == "JWT", key


@pytest.mark.parametrize("app", ["default_app", "configured_app"])
def test_user_pool_invokes_the_control_planes_trigger_functions_by_name(
    app: str, request: pytest.FixtureRequest
) -> None:
    synthesized = request.getfixturevalue(app)
    pool = next(iter(identity(synthesized).find_resources("AWS::Cognito::UserPool").values()))
    config = json.dumps(pool["Properties"]["LambdaConfig"])
    assert ":function:agent-builder-presignup" in config
    assert ":function:agent-builder-postconfirmation" in config
    functions = control_plane(synthesized).find_resources("AWS::Lambda::Function")
    handlers = {
        f["Properties"].get("FunctionName"): f["Properties"].get("Handler")
        for f in functions.values()
    }
    assert handlers["agent-builder-presignup"] == "handlers.sign_up.pre_sign_up"
    assert handlers["agent-builder-postconfirmation"] == "handlers.sign_up.post_confirmation"


def test_only_the_user_pool_may_invoke_the_triggers(default_app: Synthesized) -> None:
    permissions = control_plane(default_app).find_resources(
        "AWS::Lambda::Permission", {"Properties": {"Principal": "cognito-idp.amazonaws.com"}}
    )
    assert len(permissions) == 2
    for permission in permissions.values():
        props = permission["Properties"]
        assert "UsersUserPool7E610616Arn" in json.dumps(props["SourceArn"])
        assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}


def _policy_statements(app: Synthesized, role_fragment: str) -> list[dict[str, Any]]:
    policies = control_plane(app).find_resources("AWS::IAM::Policy")
    return [
        statement
        for policy in policies.values()
        if any(role_fragment in json.dumps(r) for r in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_pre_sign_up_may_find_create_and_link_users_of_this_pool_only(
    default_app: Synthesized,
) -> None:
    statements = _policy_statements(default_app, "PreSignUpRole")
    cognito = [s for s in statements if "cognito-idp" in json.dumps(s["Action"])]
    assert len(cognito) == 1
    assert sorted(cognito[0]["Action"]) == [
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminLinkProviderForUser",
        "cognito-idp:AdminSetUserPassword",
        "cognito-idp:ListUsers",
    ]
    assert "UsersUserPool7E610616Arn" in json.dumps(cognito[0]["Resource"])
    assert _table_actions(statements) == {
        "ProfilesTable": {"dynamodb:UpdateItem"},
        # An SSO sign-up: does its organisation still exist?
        "OrganizationsTable": {"dynamodb:GetItem"},
    }


def _table_actions(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """DynamoDB actions by table (the logical id's prefix in the statement's resource)."""
    tables: dict[str, set[str]] = {}
    for statement in statements:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        resource = json.dumps(statement["Resource"])
        for table in ("ProfilesTable", "OrganizationsTable", "AuditTable"):
            if table in resource:
                tables.setdefault(table, set()).update(actions)
        assert any(t in resource for t in ("ProfilesTable", "OrganizationsTable", "AuditTable"))
    return tables


def test_post_confirmation_updates_profiles_and_records_sso_memberships_only(
    default_app: Synthesized,
) -> None:
    statements = _policy_statements(default_app, "PostConfirmationRole")
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "cognito-idp:AdminCreateUser" not in actions
    assert _table_actions(statements) == {
        "ProfilesTable": {"dynamodb:UpdateItem"},
        # An SSO sign-up's membership: member Put, the organisation's check or admin count.
        "OrganizationsTable": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        },
        "AuditTable": {"dynamodb:PutItem"},
    }


def test_blocked_domains_reach_the_triggers(configured_app: Synthesized) -> None:
    control_plane(configured_app).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handlers.sign_up.pre_sign_up",
            "Environment": {
                "Variables": Match.object_like({"BLOCKED_EMAIL_DOMAINS": "spam.example"})
            },
            "Timeout": 5,
        },
    )
