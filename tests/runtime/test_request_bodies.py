"""Every body-taking route reads its body in one place (handlers/body.py): a body that is
not JSON is a 4xx, never a 500, and nothing is stored.

Events are payload v2 as API Gateway sends them (tests/events/http_api_request.json): a
body that is not UTF-8 text arrives base64-encoded with isBase64Encoded.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from agent_builder.validation import MAX_BODY_BYTES
from handlers.body import is_json_media_type
from tests.runtime.support import AGENT, Answer, Platform, api_handler, http_event, lambda_context

VALID_BODIES: dict[str, dict[str, Any]] = {
    "/agents": AGENT,
    "/agents/{agentId}/tests": {"input": "hello"},
    "/agents/{agentId}/deployments": {"input": "hello"},
    "/aws-account/onboarding": {},
    "/aws-account": {
        "roleArn": "arn:aws:iam::111111111111:role/agent-builder-deployer",
        "externalId": "not-the-one",
        "region": "eu-west-1",
    },
}
ROUTES = [
    ("POST", "/agents"),
    ("POST", "/agents/{agentId}/tests"),
    ("POST", "/agents/{agentId}/deployments"),
    ("POST", "/aws-account/onboarding"),
    ("PUT", "/aws-account"),
]


def send(
    method: str,
    path: str,
    raw: str | None,
    *,
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
) -> Answer:
    event = http_event(method, path)
    event["headers"].pop("content-type", None)
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    if raw is not None:
        event["body"] = raw
    event["isBase64Encoded"] = base64_encoded
    result = api_handler(path)(event, lambda_context())
    text = result.get("body") or ""
    return Answer(
        status=result["statusCode"],
        headers={k.lower(): v for k, v in (result.get("headers") or {}).items()},
        body=json.loads(text) if text else None,
    )


@pytest.fixture
def routes(platform: Platform, agent_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path.replace("{agentId}", agent_id), VALID_BODIES[path]) for method, path in ROUTES
    ]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


REFUSED: list[tuple[str, dict[str, Any], int, str]] = [
    # (what, how it is sent, status, code)
    (
        "not UTF-8, base64 as API Gateway sends it",
        {"raw": b64(b"\xff"), "base64_encoded": True},
        400,
        "INVALID_BODY",
    ),
    (
        "not UTF-8 inside JSON",
        {"raw": b64(b'{"input": "\xff"}'), "base64_encoded": True},
        400,
        "INVALID_BODY",
    ),
    ("not base64", {"raw": "%%%not base64", "base64_encoded": True}, 400, "INVALID_BODY"),
    ("not JSON", {"raw": "{not json"}, 400, "VALIDATION_ERROR"),
    ("a JSON list", {"raw": "[{}]"}, 400, "VALIDATION_ERROR"),
    ("JSON null", {"raw": "null"}, 400, "VALIDATION_ERROR"),
    ("an integer Python will not convert", {"raw": "9" * 5000}, 400, "VALIDATION_ERROR"),
    ("text/plain", {"raw": "{}", "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    (
        "application/octet-stream",
        {"raw": b64(b"\xff"), "content_type": "application/octet-stream", "base64_encoded": True},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    (
        "multipart without boundary",
        {"raw": "--x\r\n\r\n--x--", "content_type": "multipart/form-data"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    (
        "a form",
        {"raw": "name=bot", "content_type": "application/x-www-form-urlencoded"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    ("no content type", {"raw": "{}", "content_type": None}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    (
        "a charset other than UTF-8",
        {"raw": "{}", "content_type": "application/json; charset=latin-1"},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    (
        "over the size limit",
        {"raw": json.dumps({"input": "x" * MAX_BODY_BYTES})},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    (
        "over the size limit, base64",
        {"raw": b64(b" " * (MAX_BODY_BYTES + 1)), "base64_encoded": True},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
]


@pytest.mark.parametrize(("what", "how", "status", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_an_unreadable_body_is_refused_on_every_body_taking_route(
    platform: Platform,
    routes: list[tuple[str, str, dict[str, Any]]],
    what: str,
    how: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = platform.snapshot()
    for method, path, _ in routes:
        answer = send(method, path, how["raw"], **_options(how))
        assert (answer.status, answer.body["error"]["code"]) == (status, code), (
            method,
            path,
            answer.body,
        )
        assert set(answer.body) == {"error"}
        assert answer.headers["content-type"] == "application/json"
    assert platform.snapshot() == before


def _options(how: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in how.items() if key != "raw"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "APPLICATION/JSON",
        "Application/Json; charset=UTF-8",
        "application/json;charset=utf-8",
    ],
)
def test_json_media_types_compare_case_insensitively(
    platform: Platform, agent_id: str, content_type: str
) -> None:
    answer = send("POST", "/agents", json.dumps(AGENT), content_type=content_type)
    assert answer.status == 201, answer.body
    answer = send(
        "POST", f"/agents/{agent_id}/tests", json.dumps({"input": "hi"}), content_type=content_type
    )
    assert answer.status == 202, answer.body


def test_a_json_body_may_arrive_base64_encoded(platform: Platform) -> None:
    answer = send("POST", "/agents", b64(json.dumps(AGENT).encode()), base64_encoded=True)
    assert answer.status == 201, answer.body


def test_a_valid_body_with_every_character_escaped_is_within_the_limit(platform: Platform) -> None:
    # The largest instructions the domain accepts, each byte written as \u0001: 6 bytes each.
    agent = {**AGENT, "instructions": "\u0001" * 16 * 1024, "name": "n" * 64}
    raw = json.dumps(agent, ensure_ascii=True)
    assert len(raw) > 6 * 16 * 1024
    answer = send("POST", "/agents", raw)
    assert answer.status == 201, answer.body


def test_an_optional_body_needs_no_content_type(platform: Platform) -> None:
    for raw in (None, ""):
        answer = send("POST", "/aws-account/onboarding", raw, content_type=None)
        assert answer.status != 415, answer.body
        assert answer.status < 500, answer.body


def test_a_required_body_that_is_missing_is_a_validation_error(platform: Platform) -> None:
    answer = send("POST", "/agents", None, content_type=None)
    assert (answer.status, answer.body["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_routes_without_a_body_do_not_read_one(platform: Platform) -> None:
    answer = send("GET", "/me", b64(b"\xff"), content_type="text/plain", base64_encoded=True)
    assert answer.status == 200, answer.body


def test_the_body_reader_is_the_one_both_resolvers_use() -> None:
    from handlers import api, org_api
    from handlers.body import JsonBodyValidation

    for module in (api, org_api):
        assert isinstance(module.app._request_validation_middleware, JsonBodyValidation)


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("APPLICATION/JSON", True),
        (' application/json ; charset="utf-8"', True),
        ("application/json; charset=utf8", True),
        ("application/json; charset=iso-8859-1", False),
        ("application/jsonx", False),
        ("application/problem+json", False),
        ("text/json", False),
        ("", False),
    ],
)
def test_json_media_type(content_type: str, json: bool) -> None:
    assert is_json_media_type(content_type) is json


@pytest.mark.parametrize("text", ["   ", "\t\n", "\x1e", "\u00a0", " a ", "\x1c\x1d", "\u3000"])
def test_blank_means_the_same_to_the_document_pydantic_and_the_domain(text: str) -> None:
    """One definition of "not blank" (validation.NOT_BLANK): what the OpenAPI pattern
    accepts, pydantic accepts and the launch code does not call blank, and the reverse
    (schemathesis found `{"input": "\\u001e"}` accepted by the schema, refused as blank)."""
    import re

    import pydantic

    from agent_builder.validation import NOT_BLANK, is_blank
    from handlers.schemas import TestRequest

    by_document = re.search(NOT_BLANK, text) is not None
    try:
        TestRequest(input=text)
        by_pydantic = True
    except pydantic.ValidationError:
        by_pydantic = False
    assert by_document == by_pydantic == (not is_blank(text))
