"""The OpenAPI document is generated from the code and covers the whole contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from handlers.openapi import document, render

ROOT = Path(__file__).resolve().parents[2]
# DESIGN.md "HTTP API contract", the routes this issue serves.
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
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document()


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


def test_rendering_is_deterministic() -> None:
    assert render() == render()
    assert json.loads(render()) == document()


def test_export_script_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_openapi.py"), "--output", str(target)],
        check=True,
    )
    assert target.read_text() == render()
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
