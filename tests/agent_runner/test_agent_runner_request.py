"""request.json validation: every way a request can be wrong is refused with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

import runner

RUN_ID = "run-1"


def valid() -> dict[str, Any]:
    return {
        "runId": RUN_ID,
        "agent": {
            "name": "bot",
            "model": "amazon.nova-micro-v1:0",
            "instructions": "Be brief.",
            "parameters": {"temperature": 0.5, "maxTokens": 100},
        },
        "input": "hello",
    }


def parse(document: Any, *, cap: int = 1000) -> runner.AgentRequest:
    return runner.parse_request(json.dumps(document).encode(), run_id=RUN_ID, max_tokens_cap=cap)


def test_a_valid_request_is_parsed() -> None:
    assert parse(valid()) == runner.AgentRequest(
        agent_name="bot",
        model="amazon.nova-micro-v1:0",
        instructions="Be brief.",
        input="hello",
        max_tokens=100,
        temperature=0.5,
    )


def test_unknown_fields_are_ignored_so_the_api_can_add_some() -> None:
    document = valid()
    document["agentId"] = "a-1"
    document["agent"]["createdAt"] = "2026-01-01T00:00:00Z"

    assert parse(document).model == "amazon.nova-micro-v1:0"


def test_an_integer_temperature_is_accepted_as_a_float() -> None:
    document = valid()
    document["agent"]["parameters"]["temperature"] = 1

    assert parse(document).temperature == 1.0


def _set(path: str, value: Any) -> dict[str, Any]:
    document = valid()
    *parents, leaf = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[leaf]
    else:
        target[leaf] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "request must be a JSON object"),
        (_set("runId", "another-run"), "request runId does not match this run"),
        (_set("agent", "bot"), "agent must be a JSON object"),
        (_set("agent.model", ""), "agent.model must be a non-empty string"),
        (_set("agent.model", _DELETE), "agent.model must be a non-empty string"),
        (_set("agent.instructions", None), "agent.instructions must be a string"),
        (_set("input", _DELETE), "input must be a non-empty string"),
        (_set("input", "   "), "input must be a non-empty string"),
        (_set("input", {"text": "hi"}), "input must be a non-empty string"),
        (_set("agent.parameters", [100]), "agent.parameters must be a JSON object"),
        (_set("agent.parameters", _DELETE), "maxTokens must be an integer"),
        (_set("agent.parameters.maxTokens", "100"), "maxTokens must be an integer"),
        (_set("agent.parameters.maxTokens", True), "maxTokens must be an integer"),
        (_set("agent.parameters.maxTokens", 100.5), "maxTokens must be an integer"),
        (_set("agent.parameters.maxTokens", 0), "maxTokens must be between 1 and 1000"),
        (_set("agent.parameters.maxTokens", 1001), "maxTokens must be between 1 and 1000"),
        (_set("agent.parameters.temperature", "hot"), "temperature must be a number"),
        (_set("agent.parameters.temperature", False), "temperature must be a number"),
        (_set("agent.parameters.temperature", 1.5), "temperature must be between 0 and 1"),
        (_set("agent.parameters.temperature", -0.1), "temperature must be between 0 and 1"),
    ],
)
def test_an_invalid_request_is_refused_with_a_reason(document: Any, reason: str) -> None:
    with pytest.raises(runner.RunFailed) as refused:
        parse(document)

    assert refused.value.code == "INVALID_REQUEST"
    assert reason in refused.value.message


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"{'single': 'quotes'}"])
def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(runner.RunFailed, match="not valid JSON"):
        runner.parse_request(body, run_id=RUN_ID, max_tokens_cap=1000)


def test_an_oversized_request_is_refused_before_parsing() -> None:
    body = b" " * (runner.MAX_REQUEST_BYTES + 1)

    with pytest.raises(runner.RunFailed, match="larger than"):
        runner.parse_request(body, run_id=RUN_ID, max_tokens_cap=1000)
