"""The console's API client against dist/openapi.json: every operation it can call is a
documented one, with the documented method, path, query parameters and body fields.

OPERATIONS is read from web/js/api.js itself (node imports the module), so the test
checks what the browser runs. The browser journeys check the requests actually sent too
(tests/web/conftest.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from local_mode.assembly import ROOT
from tests.web.conftest import OPENAPI, resolve

WEB = ROOT / "web"


@pytest.fixture(scope="module")
def operations() -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is needed (it runs the CDK too)"
    script = (
        f"import {{ OPERATIONS }} from {json.dumps((WEB / 'js' / 'api.js').as_uri())};"
        "console.log(JSON.stringify(OPERATIONS));"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def documented(method: str, path: str) -> dict[str, Any]:
    operation = OPENAPI["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{method} {path} is not in dist/openapi.json"
    return dict(operation)


def test_the_client_covers_the_routes_the_screens_need(operations: dict[str, Any]) -> None:
    used = {(op["method"], op["path"]) for op in operations.values()}
    for route in (
        ("GET", "/me"),
        ("GET", "/agents"),
        ("POST", "/agents"),
        ("DELETE", "/agents/{agentId}"),
        ("POST", "/agents/{agentId}/tests"),
        ("GET", "/runs/{runId}"),
        ("GET", "/runs/{runId}/logs"),
        ("POST", "/aws-account/onboarding"),
        ("GET", "/aws-account"),
        ("DELETE", "/aws-account"),
        ("POST", "/org"),
        ("GET", "/org"),
        ("PATCH", "/org"),
        ("GET", "/org/members"),
        ("PUT", "/org/members/{userId}"),
        ("DELETE", "/org/members/{userId}"),
        ("POST", "/org/invitations"),
        ("GET", "/org/invitations"),
        ("DELETE", "/org/invitations/{invitationId}"),
        ("POST", "/org/invitations/{invitationId}/accept"),
        ("GET", "/org/audit"),
        ("PUT", "/org/sso"),
        ("DELETE", "/org/sso"),
        ("POST", "/org/sso/device-authorization"),
        ("GET", "/org/sso/session"),
        ("DELETE", "/org/sso/session"),
        ("POST", "/org/accounts/onboarding"),
        ("GET", "/org/accounts"),
        ("DELETE", "/org/accounts/{accountId}"),
    ):
        assert route in used, route


def test_every_operation_is_documented_with_its_method_and_path(
    operations: dict[str, Any],
) -> None:
    for name, op in operations.items():
        documented(op["method"], op["path"]), name


def test_query_parameters_are_documented(operations: dict[str, Any]) -> None:
    for name, op in operations.items():
        parameters = documented(op["method"], op["path"]).get("parameters", [])
        allowed = {p["name"] for p in parameters if p["in"] == "query"}
        assert set(op.get("query", [])) <= allowed, (name, op.get("query"), allowed)


def test_bodies_send_only_documented_fields_and_can_send_every_required_one(
    operations: dict[str, Any],
) -> None:
    for name, op in operations.items():
        request = documented(op["method"], op["path"]).get("requestBody")
        if "body" not in op:
            assert not (request or {}).get("required"), f"{name} must send a body"
            continue
        assert request is not None, f"{name} sends a body the document does not take"
        schema = resolve(request["content"]["application/json"]["schema"])
        properties = schema.get("properties", {})
        assert set(op["body"]) <= set(properties), (name, set(op["body"]) - set(properties))
        assert set(schema.get("required", [])) <= set(op["body"]), name
        if "parameters" in op:  # the nested object's fields, for createAgent
            nested = resolve(next(s for s in properties["parameters"]["anyOf"] if "$ref" in s))
            assert set(op["parameters"]) <= set(nested["properties"]), name


def test_idempotent_operations_take_the_documented_header(operations: dict[str, Any]) -> None:
    for name, op in operations.items():
        if op.get("idempotent"):
            parameters = documented(op["method"], op["path"]).get("parameters", [])
            headers = {p["name"].lower() for p in parameters if p["in"] == "header"}
            assert "idempotency-key" in headers, name


def test_no_screen_calls_the_api_around_the_client() -> None:
    """fetch() only in the client, the sign-in module (its own endpoints) and the shell
    (config.json)."""
    for module in (WEB / "js").glob("*.js"):
        if re.search(r"\bfetch\(", module.read_text()):
            assert module.name in ("api.js", "auth.js", "main.js"), module.name
    shell = (WEB / "js" / "main.js").read_text()
    assert re.findall(r"\bfetch\(([^,)]*)", shell) == ['"/config.json"']


def test_nothing_is_inline_or_from_another_origin() -> None:
    html = (WEB / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html and " style=" not in html
    for text in [
        html,
        *(p.read_text() for p in WEB.rglob("*.js")),
        (WEB / "styles.css").read_text(),
    ]:
        assert not re.search(r"(src|href)=\"(https?:)?//", text)
        assert "@import" not in text and "url(http" not in text
