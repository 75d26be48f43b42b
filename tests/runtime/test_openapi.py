"""The OpenAPI document is generated from the code and covers the whole contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_builder import validation
from agent_builder.regions import aws_regions
from handlers.openapi import ApiLimits, document, ecma, render
from local_mode.assembly import cdk_context
from tests.runtime.support import AGENT, ApiCall
from tests.scripts.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
# DESIGN.md "HTTP API contract": every route.
CONTRACT = {
    "/me": {"get"},
    "/agents": {"get", "post"},
    "/agents/{agentId}": {"get", "delete"},
    "/agents/{agentId}/tests": {"post"},
    "/agents/{agentId}/deployments": {"post"},
    "/runs": {"get"},
    "/runs/{runId}": {"get"},
    "/runs/{runId}/logs": {"get"},
    "/aws-account/onboarding": {"post"},
    "/aws-account": {"put", "get", "delete"},
    "/audit": {"get"},
    "/org": {"post", "get", "patch"},
    "/org/members": {"get"},
    "/org/members/{userId}": {"put", "delete"},
    "/org/invitations": {"post", "get"},
    "/org/invitations/{invitationId}": {"delete"},
    "/org/invitations/{invitationId}/accept": {"post"},
    "/org/audit": {"get"},
    "/org/sso": {"put", "delete"},
    "/org/sso/device-authorization": {"post"},
    "/org/sso/session": {"get", "delete"},
    "/org/accounts/onboarding": {"post"},
    "/org/accounts": {"get"},
    "/org/accounts/{accountId}": {"delete"},
}


BODY_TAKING = {
    ("/agents", "post"),
    ("/agents/{agentId}/tests", "post"),
    ("/agents/{agentId}/deployments", "post"),
    ("/aws-account/onboarding", "post"),
    ("/aws-account", "put"),
    ("/org", "post"),
    ("/org", "patch"),
    ("/org/members/{userId}", "put"),
    ("/org/invitations", "post"),
    ("/org/sso", "put"),
    ("/org/accounts/onboarding", "post"),
}


@pytest.fixture(scope="module")
def limits() -> ApiLimits:
    limits: ApiLimits = load_script("export_openapi").api_limits()
    return limits


@pytest.fixture(scope="module")
def doc(limits: ApiLimits) -> dict[str, Any]:
    return document(limits)


def test_every_contract_route_is_documented_with_exactly_its_methods(doc: dict[str, Any]) -> None:
    assert {path: set(ops) for path, ops in doc["paths"].items()} == CONTRACT


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/agents", "post", "201"),
        ("/agents/{agentId}", "delete", "204"),
        ("/agents/{agentId}/tests", "post", "202"),
        ("/agents/{agentId}/deployments", "post", "202"),
        ("/me", "get", "200"),
        ("/aws-account/onboarding", "post", "200"),
        ("/aws-account", "put", "200"),
        ("/aws-account", "get", "200"),
        ("/aws-account", "delete", "204"),
    ],
)
def test_success_status_is_the_one_the_route_answers(
    doc: dict[str, Any], path: str, method: str, status: str
) -> None:
    responses = doc["paths"][path][method]["responses"]
    assert status in responses
    assert not {code for code in responses if code.startswith("2")} - {status}


def test_every_error_answer_uses_the_common_error_body(doc: dict[str, Any]) -> None:
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code >= "400":
                    schema = response["content"]["application/json"]["schema"]
                    if code in ("401", "413"):
                        # API Gateway's own answer, or the function's.
                        assert schema == {
                            "anyOf": [
                                {"$ref": "#/components/schemas/ErrorBody"},
                                {"$ref": "#/components/schemas/GatewayMessage"},
                            ]
                        }, (path, method, code)
                        continue
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (
                        path,
                        method,
                        code,
                    )
            if "422" in operation["responses"]:
                # Only where a connected account is validated or used, never Powertools' own.
                assert "ErrorBody" in json.dumps(operation["responses"]["422"]), (path, method)


def test_quota_and_rate_limit_answers_are_documented_on_launch_routes(doc: dict[str, Any]) -> None:
    for path in ("/agents/{agentId}/tests", "/agents/{agentId}/deployments"):
        operation = doc["paths"][path]["post"]
        assert {"404", "409", "429", "503"} <= set(operation["responses"])
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["idempotency-key"]


def test_request_bodies_refuse_unknown_fields(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in (
        "CreateAgent",
        "AgentParameters",
        "TestRequest",
        "DeploymentRequest",
        "OnboardingRequest",
        "ConnectAccount",
    ):
        assert schemas[name]["additionalProperties"] is False, name


def test_every_route_requires_the_jwt(doc: dict[str, Any]) -> None:
    assert doc["security"] == [{"cognitoJwt": []}]
    assert doc["components"]["securitySchemes"]["cognitoJwt"]["scheme"] == "bearer"


def test_rendering_is_deterministic(limits: ApiLimits) -> None:
    assert render(limits) == render(limits)
    assert json.loads(render(limits)) == document(limits)


def test_export_script_writes_the_document(tmp_path: Path, limits: ApiLimits) -> None:
    target = tmp_path / "openapi.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_openapi.py"), "--output", str(target)],
        check=True,
    )
    assert target.read_text() == render(limits)
    check = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "export_openapi.py"),
            "--output",
            str(target),
            "--check",
        ]
    )
    assert check.returncode == 0


def test_account_validation_failures_are_documented_where_they_can_happen(
    doc: dict[str, Any],
) -> None:
    assert "422" in doc["paths"]["/aws-account"]["put"]["responses"]
    assert "422" in doc["paths"]["/agents/{agentId}/deployments"]["post"]["responses"]
    assert "422" not in doc["paths"]["/aws-account"]["get"]["responses"]


# ---- what the code enforces, stated by the document --------------------------------------


def test_the_allowed_models_and_the_token_cap_come_from_the_configuration(
    doc: dict[str, Any], limits: ApiLimits
) -> None:
    context = cdk_context()
    assert limits == ApiLimits(tuple(context["allowedModels"]), context["maxOutputTokens"])
    schemas = doc["components"]["schemas"]
    assert schemas["CreateAgent"]["properties"]["model"]["enum"] == context["allowedModels"]
    max_tokens = schemas["AgentParameters"]["properties"]["maxTokens"]["anyOf"][0]
    assert (max_tokens["minimum"], max_tokens["maximum"]) == (1, context["maxOutputTokens"])


def test_the_export_takes_context_overrides(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "export_openapi.py"),
            "--output",
            str(target),
            "-c",
            "allowedModels=amazon.nova-pro-v1:0",
            "-c",
            "maxOutputTokens=77",
        ],
        check=True,
    )
    schemas = json.loads(target.read_text())["components"]["schemas"]
    assert schemas["CreateAgent"]["properties"]["model"]["enum"] == ["amazon.nova-pro-v1:0"]
    assert schemas["AgentParameters"]["properties"]["maxTokens"]["anyOf"][0]["maximum"] == 77


def _string(schema: dict[str, Any]) -> dict[str, Any]:
    return next((b for b in schema.get("anyOf", ()) if b.get("type") != "null"), schema)


def test_patterns_are_validation_py_s(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    connect = schemas["ConnectAccount"]["properties"]
    assert connect["roleArn"]["pattern"] == ecma(validation.ROLE_ARN)
    assert _string(connect["resourcePrefix"])["pattern"] == validation.RESOURCE_PREFIX.pattern
    assert _string(connect["securityGroupId"])["pattern"] == validation.SECURITY_GROUP.pattern
    assert _string(connect["subnetIds"])["items"]["pattern"] == validation.SUBNET.pattern
    for model in ("ConnectAccount", "OnboardingRequest"):
        region = _string(schemas[model]["properties"]["region"])
        assert region["pattern"] == validation.REGION.pattern
        assert region["enum"] == sorted(aws_regions())
        assert all(validation.REGION.match(name) for name in region["enum"])
    for model in ("Run", "AwsAccount"):
        account = _string(schemas[model]["properties"]["accountId"])
        assert account["pattern"] == validation.ACCOUNT_ID.pattern
    assert schemas["CreateAgent"]["properties"]["name"]["pattern"] == validation.AGENT_NAME_TRIMMED
    for path in ("/agents/{agentId}/tests", "/agents/{agentId}/deployments"):
        (header,) = [
            p for p in doc["paths"][path]["post"]["parameters"] if p["name"] == "idempotency-key"
        ]
        assert header["schema"]["pattern"] == validation.IDEMPOTENCY_KEY.pattern


def test_documented_patterns_read_the_same_in_python_and_keep_their_meaning() -> None:
    import re

    arn = "arn:aws:iam::111111111111:role/agent-builder-deployer"
    documented = re.compile(ecma(validation.ROLE_ARN))
    assert documented.match(arn) and validation.ROLE_ARN.match(arn)
    for bad in ("arn:aws:iam::1111:role/x", "arn:aws:iam::111111111111:user/x", arn + " "):
        assert not documented.match(bad) and not validation.ROLE_ARN.match(bad)
    assert "(?P<" not in ecma(validation.ROLE_ARN)


def test_size_limits_are_said_to_be_utf8_bytes(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for model, field in (
        ("CreateAgent", "instructions"),
        ("TestRequest", "input"),
        ("DeploymentRequest", "input"),
    ):
        assert "bytes of UTF-8" in schemas[model]["properties"][field]["description"]
    assert f"{validation.MAX_BODY_BYTES} bytes" in doc["info"]["description"]


def test_next_token_is_opaque(doc: dict[str, Any]) -> None:
    for name in ("AgentPage", "RunPage", "LogPage"):
        assert (
            "opaque" in doc["components"]["schemas"][name]["properties"]["nextToken"]["description"]
        )
    for path in ("/agents", "/runs", "/runs/{runId}/logs"):
        (token,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "nextToken"]
        assert "opaque" in token["description"]
        assert token["schema"] == {"type": "string", "maxLength": 2048}


def test_204s_have_no_body(doc: dict[str, Any], api: ApiCall) -> None:
    for path, method in (("/agents/{agentId}", "delete"), ("/aws-account", "delete")):
        assert "content" not in doc["paths"][path][method]["responses"]["204"]
    agent_id = api("POST", "/agents", body=AGENT).body["agentId"]
    answer = api("DELETE", f"/agents/{agent_id}")
    assert (answer.status, answer.body) == (204, None)
    assert "content-type" not in answer.headers


def test_api_gateway_s_own_401_is_documented(doc: dict[str, Any]) -> None:
    assert doc["components"]["schemas"]["GatewayMessage"]["required"] == ["message"]
    for operations in doc["paths"].values():
        for operation in operations.values():
            unauthorized = operation["responses"]["401"]["content"]["application/json"]
            assert unauthorized["example"] == {"message": "Unauthorized"}


def test_413_and_415_are_documented_on_exactly_the_body_taking_operations(
    doc: dict[str, Any],
) -> None:
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            takes_body = "requestBody" in operation
            assert takes_body == ((path, method) in BODY_TAKING), (path, method)
            assert ("413" in operation["responses"]) == takes_body, (path, method)
            assert ("415" in operation["responses"]) == takes_body, (path, method)


def test_links_lead_from_what_is_created_to_where_it_is_read(doc: dict[str, Any]) -> None:
    operation_ids = {
        op["operationId"]: (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    links = doc["paths"]["/agents"]["post"]["responses"]["201"]["links"]
    assert operation_ids[links["GetAgent"]["operationId"]] == ("/agents/{agentId}", "get")
    assert links["GetAgent"]["parameters"] == {"agentId": "$response.body#/agentId"}
    runs = doc["paths"]["/agents/{agentId}/tests"]["post"]["responses"]["202"]["links"]
    assert operation_ids[runs["GetRun"]["operationId"]] == ("/runs/{runId}", "get")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"model": "amazon.titan-text-express-v1"}, "VALIDATION_ERROR"),
        ({"parameters": {"maxTokens": 0}}, "VALIDATION_ERROR"),
        ({"name": " leading space"}, "VALIDATION_ERROR"),
        ({"instructions": "   "}, "VALIDATION_ERROR"),
        ({"instructions": "\u00e9" * 16 * 1024}, "VALIDATION_ERROR"),
    ],
)
def test_what_the_document_refuses_in_an_agent_the_code_refuses(
    api: ApiCall, change: dict[str, Any], code: str
) -> None:
    answer = api("POST", "/agents", body={**AGENT, **change})
    assert (answer.status, answer.error_code) == (400, code)


def test_the_token_cap_the_document_states_is_the_code_s(api: ApiCall, platform: Any) -> None:
    # The runtime fixture configures its own cap (support.py); the document states the
    # deployed one. Both are enforced the same way: the cap is accepted, one more is not.
    cap = int(platform.env["MAX_OUTPUT_TOKENS"])
    ok = api("POST", "/agents", body={**AGENT, "parameters": {"maxTokens": cap}})
    assert ok.status == 201, ok.body
    over = api("POST", "/agents", body={**AGENT, "parameters": {"maxTokens": cap + 1}})
    assert (over.status, over.error_code) == (400, "VALIDATION_ERROR")


def test_a_region_outside_the_documented_enum_is_refused(api: ApiCall) -> None:
    for region in ("xx-nowhere-1", "us-east-1 "):
        assert region not in aws_regions()
        answer = api("POST", "/aws-account/onboarding", body={"region": region})
        assert answer.status == 400, answer.body


def test_an_optional_body_is_documented_as_an_object_not_null(doc: dict[str, Any]) -> None:
    # The code refuses a JSON null body (test_request_bodies); the document says so.
    body = doc["paths"]["/aws-account/onboarding"]["post"]["requestBody"]
    assert body.get("required", False) is False
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OnboardingRequest"
    }


def test_the_security_scheme_asks_for_an_access_token_with_the_api_scope() -> None:
    scheme = document(ApiLimits(("amazon.nova-micro-v1:0",), 1024))["components"][
        "securitySchemes"
    ]["cognitoJwt"]
    assert scheme["scheme"].lower() == "bearer"
    assert "access token" in scheme["description"]
    assert "agent-builder-api/api" in scheme["description"]
