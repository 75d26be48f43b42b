"""The Identity stack's reconcile of the web client's org-* SAML IdPs: a custom resource
that CloudFormation re-runs exactly when it updated the client, a least-privilege function
of ours, an hourly safety net, and no reference that would make a cycle with the control
plane. cdk-nag, cfn-lint, checkov and parliament cover it in test_quality_gates.py and
test_parliament.py."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from agent_builder.gateways.saml_providers import template_settings
from agent_builder.settings import HANDLER_ENVIRONMENT
from constructs.idp_reconcile import CLIENT_PROPERTY, RECONCILE_ACTIONS, RESOURCE_TYPE
from tests.infra.conftest import Synthesized
from tests.runtime.idp_support import as_cloudformation_sends

HANDLER = "handlers.idp_reconcile.handler"


@pytest.fixture(scope="module")
def identity(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.identity)


@pytest.fixture(scope="module")
def configured(configured_app: Synthesized) -> Template:
    """Google and GitHub configured (their providers join the client), enterpriseSso on."""
    return configured_app.template(configured_app.platform.identity)


def only(template: Template, kind: str, **properties: Any) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": properties} if properties else None)
    assert len(found) == 1, (kind, sorted(found))
    return next(iter(found.items()))


def function_id(template: Template) -> str:
    return only(template, "AWS::Lambda::Function", Handler=HANDLER)[0]


def client(template: Template) -> tuple[str, dict[str, Any]]:
    return only(template, "AWS::Cognito::UserPoolClient")


def reconcile(template: Template) -> dict[str, Any]:
    return only(template, RESOURCE_TYPE)[1]


def placeholders(value: Any) -> Any:
    """An intrinsic (Ref, Fn::*) as the string CloudFormation resolves it to."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
            return "resolved-at-deploy"
        return {key: placeholders(item) for key, item in value.items()}
    if isinstance(value, list):
        return [placeholders(item) for item in value]
    return value


# ---- the custom resource ------------------------------------------------------------------


def test_the_custom_resource_runs_our_function_after_the_client(identity: Template) -> None:
    client_id, _ = client(identity)
    resource = reconcile(identity)

    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": [function_id(identity), "Arn"]}
    assert client_id in resource["DependsOn"]
    assert resource["Properties"]["ClientId"] == {"Ref": client_id}
    # Without an answer, CloudFormation fails the update in 10 minutes, not an hour.
    assert resource["Properties"]["ServiceTimeout"] == "600"
    assert resource["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("app", ["identity", "configured"])
def test_the_trigger_is_the_clients_template_properties(
    app: str, request: pytest.FixtureRequest
) -> None:
    """So CloudFormation updates the custom resource exactly when it updates the client."""
    template: Template = request.getfixturevalue(app)
    _, web_client = client(template)

    assert reconcile(template)["Properties"][CLIENT_PROPERTY] == web_client["Properties"]


def test_the_trigger_changes_when_the_clients_configuration_does(
    identity: Template, configured: Template
) -> None:
    plain = reconcile(identity)["Properties"][CLIENT_PROPERTY]
    with_providers = reconcile(configured)["Properties"][CLIENT_PROPERTY]

    assert plain["SupportedIdentityProviders"] == ["COGNITO"]
    assert with_providers["SupportedIdentityProviders"] == [
        "COGNITO",
        {
            "Ref": only(
                configured, "AWS::Cognito::UserPoolIdentityProvider", ProviderType="Google"
            )[0]
        },
        {"Ref": only(configured, "AWS::Cognito::UserPoolIdentityProvider", ProviderType="OIDC")[0]},
    ]
    assert plain != with_providers


@pytest.mark.parametrize("app", ["identity", "configured"])
def test_the_function_reads_every_client_property_cloudformation_will_send(
    app: str, request: pytest.FixtureRequest
) -> None:
    """A property that fits no API shape would fail every deploy that updates the client."""
    template: Template = request.getfixturevalue(app)
    sent = as_cloudformation_sends(placeholders(reconcile(template)["Properties"][CLIENT_PROPERTY]))

    settings = template_settings(sent)

    assert {"CallbackURLs", "SupportedIdentityProviders", "TokenValidityUnits"} <= set(settings)
    assert settings["AllowedOAuthFlowsUserPoolClient"] is True


def test_the_reconcile_exists_without_enterprise_sso(default_app: Synthesized) -> None:
    """enterpriseSso adds the KMS key of IAM Identity Center sessions; SAML IdPs are made by
    PUT /org/sso whatever it says, so the reconcile is always there."""
    assert default_app.platform.config.enterprise_sso is False
    assert default_app.platform.identity.idp_reconcile is not None


# ---- the function -------------------------------------------------------------------------


def test_the_function_gets_exactly_the_environment_its_handler_reads(identity: Template) -> None:
    _, function = only(identity, "AWS::Lambda::Function", Handler=HANDLER)
    variables = function["Properties"]["Environment"]["Variables"]

    assert set(variables) == HANDLER_ENVIRONMENT["handlers.idp_reconcile"]
    assert variables["USER_POOL_ID"] == {"Ref": only(identity, "AWS::Cognito::UserPool")[0]}
    assert variables["USER_POOL_CLIENT_ID"] == {"Ref": client(identity)[0]}
    assert function["Properties"]["FunctionName"] == "agent-builder-idpreconcile"


def test_the_function_may_only_reconcile_the_one_pools_client(identity: Template) -> None:
    pool_id, _ = only(identity, "AWS::Cognito::UserPool")
    _, function = only(identity, "AWS::Lambda::Function", Handler=HANDLER)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in identity.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    cognito = [
        s for s in statements if any(str(a).startswith("cognito-idp:") for a in _list(s["Action"]))
    ]

    assert cognito == [
        {
            "Action": sorted(RECONCILE_ACTIONS),
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [pool_id, "Arn"]},
        }
    ]
    # Nothing else but its own logs, dead letters and X-Ray traces.
    others = {a for s in statements if s not in cognito for a in _list(s["Action"])}
    assert others == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_functions_log_group_has_retention_and_goes_with_the_stack(
    identity: Template, default_app: Synthesized
) -> None:
    _, function = only(identity, "AWS::Lambda::Function", Handler=HANDLER)
    group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    resource = identity.find_resources("AWS::Logs::LogGroup")[group]

    assert resource["Properties"]["LogGroupName"] == "/aws/lambda/agent-builder-idpreconcile"
    assert (
        resource["Properties"]["RetentionInDays"] == default_app.platform.config.log_retention_days
    )
    assert resource["DeletionPolicy"] == "Delete"


def test_an_hourly_schedule_runs_the_same_function(identity: Template) -> None:
    identity.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 hour)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [function_id(identity), "Arn"]}})],
        },
    )


# ---- no cycle -----------------------------------------------------------------------------


def test_the_identity_stack_still_depends_on_nothing_of_the_control_plane(
    default_app: Synthesized,
) -> None:
    platform = default_app.platform
    identity = platform.identity
    assert platform.control_plane not in identity.dependencies
    assert identity in platform.control_plane.dependencies
    imports = [
        str(value)
        for value in _intrinsics(default_app.template(identity).to_json(), "Fn::ImportValue")
    ]
    assert imports and all(name.startswith("agent-builder-web-hosting:") for name in imports)


def _intrinsics(value: Any, name: str) -> list[Any]:
    if isinstance(value, dict):
        found = [value[name]] if name in value else []
        return found + [x for item in value.values() for x in _intrinsics(item, name)]
    if isinstance(value, list):
        return [x for item in value for x in _intrinsics(item, name)]
    return []


def test_the_pools_one_client_has_no_secret_for_describe_to_expose(identity: Template) -> None:
    """parliament's CREDENTIALS_EXPOSURE on DescribeUserPoolClient is allow-listed for this."""
    _, web_client = client(identity)
    assert web_client["Properties"]["GenerateSecret"] is False
