"""Tier 3 in the control plane: the key for stored IAM Identity Center tokens, and what
the API function may do with it and with the user pool's identity providers."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Synthesized
from tests.infra.test_control_plane_stack import statements_of

COGNITO_ACTIONS = {
    "cognito-idp:CreateIdentityProvider",
    "cognito-idp:UpdateIdentityProvider",
    "cognito-idp:DeleteIdentityProvider",
    "cognito-idp:DescribeIdentityProvider",
    "cognito-idp:ListIdentityProviders",
    "cognito-idp:DescribeUserPoolClient",
    "cognito-idp:UpdateUserPoolClient",
}


@pytest.fixture(scope="module")
def template(configured_app: Synthesized) -> Template:
    """The key exists with enterpriseSso=true (conftest.CONFIGURED_SIGN_IN)."""
    return configured_app.template(configured_app.platform.control_plane)


def _key(template: Template) -> dict[str, Any]:
    (key,) = template.find_resources("AWS::KMS::Key").values()
    return dict(key)


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return set(actions if isinstance(actions, list) else [actions])


def test_the_sso_token_key_rotates_and_follows_the_removal_policy(template: Template) -> None:
    key = _key(template)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == 7
    assert key["DeletionPolicy"] == "Delete"  # retainData=false in cdk.json


def test_the_key_retains_with_retain_data(synth: Any) -> None:
    app = synth(retainData=True, enterpriseSso=True)
    key = _key(app.template(app.platform.control_plane))
    assert key["DeletionPolicy"] == "Retain"


def test_only_the_api_roles_may_encrypt_and_decrypt_and_only_with_the_member_context(
    template: Template,
) -> None:
    statements = _key(template)["Properties"]["KeyPolicy"]["Statement"]
    granted = [s for s in statements if _actions(s) & {"kms:Encrypt", "kms:Decrypt"}]
    (api,) = [s for s in granted if isinstance(s["Principal"]["AWS"], list)]
    roles = sorted(principal["Fn::GetAtt"][0] for principal in api["Principal"]["AWS"])
    # The core API (enterprise deployments) and the /org function (device flow).
    assert [role.startswith("ApiRole") for role in roles] == [True, False]
    assert roles[1].startswith("OrgApiRole")
    assert _actions(api) == {"kms:Encrypt", "kms:Decrypt"}
    conditions = api["Condition"]
    assert conditions["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"] == [
        "purpose",
        "organizationId",
        "userId",
    ]
    assert set(conditions["StringEquals"]["kms:EncryptionContext:purpose"]) == {
        "sso-access-token",
        "sso-device-code",
        "sso-client",
    }
    assert conditions["Null"] == {
        "kms:EncryptionContext:purpose": "false",
        "kms:EncryptionContext:organizationId": "false",
        "kms:EncryptionContext:userId": "false",
    }


def test_no_function_gets_the_key_through_its_own_policy(template: Template) -> None:
    for function in ("Api", "OrgApi", "TaskEvents", "Sweeper", "Registration"):
        for statement in statements_of(template, function):
            assert not any(a.startswith("kms:") for a in _actions(statement)), (function, statement)


def test_the_org_api_may_manage_identity_providers_on_the_user_pool_only(
    template: Template,
) -> None:
    (statement,) = [s for s in statements_of(template, "OrgApi") if _actions(s) & COGNITO_ACTIONS]
    assert _actions(statement) == COGNITO_ACTIONS
    resource = statement["Resource"]
    assert "Fn::ImportValue" in resource and "UserPool" in resource["Fn::ImportValue"]
    assert "Arn" in resource["Fn::ImportValue"]


def test_other_functions_get_no_cognito_action(template: Template) -> None:
    for function in ("Api", "TaskEvents", "Sweeper", "Registration"):
        for statement in statements_of(template, function):
            assert not any(a.startswith("cognito-idp:") for a in _actions(statement))


def test_no_sso_or_sso_oidc_permission_is_granted(template: Template) -> None:
    # Bearer APIs (botocore: smithy.api#noAuth): an IAM grant would be dead weight.
    for function in ("Api", "OrgApi"):
        for statement in statements_of(template, function):
            assert not any(
                a.startswith(("sso:", "sso-oauth:", "sso-oidc:")) for a in _actions(statement)
            )


def test_the_api_gets_the_tier3_environment(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handlers.api.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "SSO_TOKEN_KEY_ARN": {
                            "Fn::GetAtt": [Match.string_like_regexp("^SsoTokenKey"), "Arn"]
                        },
                        "USER_POOL_ID": Match.any_value(),
                        "USER_POOL_CLIENT_ID": Match.any_value(),
                        "ORGANIZATION_TEMPLATE_URL": Match.any_value(),
                    }
                )
            },
        },
    )


def test_the_organisation_template_is_published_beside_the_customer_template(
    default_app: Synthesized,
) -> None:
    platform = default_app.template(default_app.platform.platform)
    deployments = platform.find_resources("Custom::CDKBucketDeployment")
    (deployment,) = deployments.values()
    # Two sources: customer-onboarding/<version>.yaml and .../organization-<version>.yaml.
    assert len(deployment["Properties"]["SourceObjectKeys"]) == 2
