"""request.json validation: every way a request can be wrong is refused with a reason."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

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


# --- customer mode: the request comes in AGENT_REQUEST, there is no bucket -------------


def _inline_env(request: dict) -> dict[str, str]:
    return {
        "RUN_ID": request["runId"],
        "AWS_REGION": "eu-west-1",
        "AGENT_REQUEST": json.dumps(request),
    }


def _customer_request() -> dict:
    return {
        "runId": "run-c1",
        "agent": {
            "name": "a",
            "model": "amazon.nova-micro-v1:0",
            "instructions": "Be brief.",
            "parameters": {"maxTokens": 50},
        },
        "input": "hello",
    }


class _NoS3:
    """Any S3 call in customer mode is a bug: there is no platform bucket there."""

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"customer mode called s3.{name}")


def test_customer_mode_needs_only_run_id_region_and_the_inline_request() -> None:
    settings = runner.load_settings(_inline_env(_customer_request()))
    assert settings.inline_request is not None
    assert settings.bucket is None and settings.result_key is None


def test_customer_mode_answers_without_touching_s3(capsys: pytest.CaptureFixture[str]) -> None:
    bedrock = boto3.client("bedrock-runtime", region_name="eu-west-1")
    stubber = Stubber(bedrock)
    stubber.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hi there"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
            "metrics": {"latencyMs": 1},
        },
    )
    with stubber:
        code = runner.main(_inline_env(_customer_request()), clients=(_NoS3(), bedrock))  # type: ignore[arg-type]
    assert code == runner.EXIT_SUCCEEDED
    out = capsys.readouterr().out
    assert "Hi there" in out
    finished = [
        json.loads(line) for line in out.splitlines() if line.startswith('{"event":"run.finished"')
    ]
    assert (
        finished
        and finished[0]["status"] == "SUCCEEDED"
        and finished[0]["usage"] == {"inputTokens": 3, "outputTokens": 2}
    )
    assert "Be brief." not in out and "hello" not in out


def test_customer_mode_malformed_inline_request_fails_with_a_clear_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = _inline_env(_customer_request()) | {"AGENT_REQUEST": "{not json"}
    code = runner.main(
        env, clients=(_NoS3(), boto3.client("bedrock-runtime", region_name="eu-west-1"))
    )  # type: ignore[arg-type]
    assert code == runner.EXIT_FAILED
    finished = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"run.finished"' in line
    ]
    assert finished[0]["errorCode"] == "INVALID_REQUEST"


def test_customer_mode_sigterm_records_the_stop_and_exits_non_zero() -> None:
    settings = runner.load_settings(_inline_env(_customer_request()))
    bedrock = boto3.client("bedrock-runtime", region_name="eu-west-1")
    run = runner.Runner(settings, s3=_NoS3(), bedrock=bedrock)  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as raised:
        run.handle_sigterm(15, None)
    assert raised.value.code == runner.EXIT_FAILED


def test_platform_mode_still_requires_its_bucket_variables() -> None:
    with pytest.raises(runner.SettingsError, match="ARTIFACTS_BUCKET"):
        runner.load_settings(
            {"RUN_ID": "r", "AWS_REGION": "us-east-1", "REQUEST_KEY": "k", "RESULT_KEY": "k2"}
        )
