"""Customer mode (Tier 2): the request comes in AGENT_REQUEST and there is no platform bucket.

The environment is built the way lambda_src customer_runs registers it in the customer's
task definition: RUN_ID, AGENT_REQUEST (compact JSON, non-ASCII kept), AWS_REGION,
MAX_OUTPUT_TOKENS, and no ARTIFACTS_BUCKET / REQUEST_KEY / RESULT_KEY.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

import runner
from tests.agent_runner.conftest import ConverseStreamStub, output_text

# The same values as conftest.py (its fixtures s3 and env are used below).
REGION = "us-east-1"
BUCKET = "agent-builder-artifacts"
RUN_ID = "3f6c1a52-0d0e-4b8f-9a51-2f1f6a0c7e11"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

INPUT = "Qu'est-ce que Fargate ? Réponds en une phrase."
INSTRUCTIONS = "You answer briefly."
CUSTOMER_STOPPED = runner.STOPPED_MESSAGE_INLINE


def customer_request() -> dict[str, Any]:
    return {
        "runId": RUN_ID,
        "agent": {
            "name": "support-bot",
            "model": MODEL,
            "instructions": INSTRUCTIONS,
            "parameters": {"temperature": 0.2, "maxTokens": 512},
        },
        "input": INPUT,
    }


def customer_env(agent_request: str | None = None) -> dict[str, str]:
    """What customer_runs.CustomerRunService._task puts in the container's environment."""
    if agent_request is None:
        agent_request = json.dumps(customer_request(), ensure_ascii=False, separators=(",", ":"))
    return {
        "RUN_ID": RUN_ID,
        "AGENT_REQUEST": agent_request,
        "AWS_REGION": REGION,
        "MAX_OUTPUT_TOKENS": "4096",
    }


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """The runner's own events, without the answer's output events."""
    events = [json.loads(line) for line in stdout.splitlines()]
    return [e for e in events if e["event"] != "output"]


class S3Calls(list[str]):
    """Every S3 operation a client is asked for, recorded before it could be sent."""

    def watch(self, client: Any) -> Any:
        client.meta.events.register(
            "provide-client-params.s3", lambda model, **_: self.append(model.name)
        )
        return client


@pytest.fixture
def s3_calls() -> S3Calls:
    return S3Calls()


@pytest.fixture
def watched_s3(s3_calls: S3Calls) -> Iterator[Any]:
    """An S3 client that answers nothing: a call would fail, and is recorded anyway."""
    client = s3_calls.watch(boto3.client("s3", region_name=REGION))
    with Stubber(client):
        yield client


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, ConverseStreamStub]]:
    client = boto3.client("bedrock-runtime", region_name=REGION)
    with ConverseStreamStub(client) as stubber:
        yield client, stubber


# --- settings ---------------------------------------------------------------------------


def test_customer_mode_needs_only_run_id_and_region_besides_the_request() -> None:
    settings = runner.load_settings(customer_env())

    assert settings.inline_request is not None
    assert (settings.bucket, settings.request_key, settings.result_key) == (None, None, None)
    assert not settings.uses_s3
    assert settings.max_tokens_cap == 4096


def test_the_settings_repr_never_shows_the_inline_request() -> None:
    settings = runner.load_settings(customer_env())

    assert INPUT not in repr(settings)
    assert INSTRUCTIONS not in repr(settings)


@pytest.mark.parametrize("missing", ["RUN_ID", "AWS_REGION"])
def test_customer_mode_without_run_id_or_region_exits_1_naming_only_that_variable(
    missing, capsys
) -> None:
    env = customer_env()
    del env[missing]

    assert runner.main(env) == 1

    err = capsys.readouterr().err
    assert f"(AGENT_REQUEST is set): {missing}" in err
    assert "ARTIFACTS_BUCKET" not in err


@pytest.mark.parametrize("present", ["ARTIFACTS_BUCKET", "RESULT_KEY"])
def test_customer_mode_with_only_half_a_result_target_refuses_to_start(present, capsys) -> None:
    env = customer_env() | {present: "something"}

    assert runner.main(env) == 1

    assert "ARTIFACTS_BUCKET and RESULT_KEY are set together" in capsys.readouterr().err


def test_platform_mode_without_agent_request_still_requires_its_bucket_variables(
    capsys,
) -> None:
    assert runner.main({"RUN_ID": RUN_ID, "AWS_REGION": REGION}) == 1

    err = capsys.readouterr().err
    assert "ARTIFACTS_BUCKET, REQUEST_KEY, RESULT_KEY" in err
    assert "AGENT_REQUEST" not in err


def test_platform_mode_refuses_to_run_without_an_s3_client(env) -> None:
    with pytest.raises(ValueError, match="S3 client is required"):
        runner.Runner(runner.load_settings(env), s3=None, bedrock=None)


# --- a run ------------------------------------------------------------------------------


def test_customer_mode_success_makes_no_s3_client_and_the_finished_line_is_the_result(
    answer, bedrock, monkeypatch, capsys
) -> None:
    client, stubber = bedrock
    stubber.add_response(
        "converse_stream",
        answer("Fargate runs containers.\nNo servers to manage."),
        expected_params={
            "modelId": MODEL,
            "system": [{"text": INSTRUCTIONS}],
            "messages": [{"role": "user", "content": [{"text": INPUT}]}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.2},
        },
    )
    asked: list[dict[str, Any]] = []

    def make_clients(region: str, **kwargs: Any) -> tuple[None, Any]:
        asked.append({"region": region, **kwargs})
        return None, client

    monkeypatch.setattr(runner, "make_clients", make_clients)

    assert runner.main(customer_env()) == 0

    stubber.assert_no_pending_responses()
    assert asked == [{"region": REGION, "s3": False}]  # no S3 client, so no S3 call
    stdout = capsys.readouterr().out
    assert output_text(stdout) == "Fargate runs containers.\nNo servers to manage."
    assert json_lines(stdout)[-1] == {
        "event": "run.finished",
        "runId": RUN_ID,
        "status": "SUCCEEDED",
        "model": MODEL,
        "stopReason": "end_turn",
        "usage": {"inputTokens": 21, "outputTokens": 34},
    }
    assert INPUT not in stdout
    assert INSTRUCTIONS not in stdout


def test_customer_mode_success_never_calls_s3_even_when_given_a_client(
    answer, watched_s3, s3_calls, bedrock
) -> None:
    client, stubber = bedrock
    stubber.add_response("converse_stream", answer("ok"))

    assert runner.main(customer_env(), clients=(watched_s3, client)) == 0

    assert s3_calls == []


def test_the_request_document_the_launcher_builds_is_accepted_as_is(answer, bedrock) -> None:
    from agent_builder.runs import request_document

    agent = {
        "name": "support-bot",
        "model": MODEL,
        "instructions": INSTRUCTIONS,
        "parameters": {"temperature": 0.2, "maxTokens": 512},
    }
    document = request_document(RUN_ID, agent, INPUT, 4096)
    client, stubber = bedrock
    stubber.add_response("converse_stream", answer("ok"))
    env = customer_env(json.dumps(document, ensure_ascii=False, separators=(",", ":")))

    assert runner.main(env, clients=(None, client)) == 0


@pytest.mark.parametrize(
    ("agent_request", "message"),
    [
        ('{"runId": "oops", "agent": ', "AGENT_REQUEST: request is not valid JSON"),
        ("", "AGENT_REQUEST: request is not valid JSON"),
        ("[]", "AGENT_REQUEST: request must be a JSON object"),
        ("\udcff", "AGENT_REQUEST: request is not valid JSON"),  # bytes that are not UTF-8
        ("\ud800", "AGENT_REQUEST: request is not valid JSON"),  # a lone surrogate
        (
            json.dumps(customer_request() | {"runId": "another-run"}),
            "AGENT_REQUEST: request runId does not match this run",
        ),
        (
            json.dumps(customer_request() | {"input": "x" * runner.MAX_REQUEST_BYTES}),
            f"AGENT_REQUEST: request is larger than {runner.MAX_REQUEST_BYTES} bytes",
        ),
    ],
    ids=["truncated", "empty", "not-an-object", "not-utf8", "surrogate", "other-run", "oversized"],
)
def test_customer_mode_malformed_agent_request_fails_with_a_clear_message_without_the_model(
    agent_request, message, watched_s3, s3_calls, bedrock, capsys
) -> None:
    client, _ = bedrock  # no response queued: a model call would end as MODEL_ERROR

    assert runner.main(customer_env(agent_request), clients=(watched_s3, client)) == 1

    assert json_lines(capsys.readouterr().out) == [
        {
            "event": "run.finished",
            "runId": RUN_ID,
            "status": "FAILED",
            "stopReason": None,
            "usage": {"inputTokens": 0, "outputTokens": 0},
            "errorCode": "INVALID_REQUEST",
            "error": message,
        }
    ]
    assert s3_calls == []


def test_customer_mode_max_tokens_above_max_output_tokens_is_refused(bedrock, capsys) -> None:
    client, _ = bedrock
    document = customer_request()
    document["agent"]["parameters"]["maxTokens"] = 4097

    assert runner.main(customer_env(json.dumps(document)), clients=(None, client)) == 1

    assert json_lines(capsys.readouterr().out)[-1]["error"] == (
        "AGENT_REQUEST: agent.parameters.maxTokens must be between 1 and 4096"
    )


def test_customer_mode_model_error_is_reported_in_the_finished_line(bedrock, capsys) -> None:
    client, stubber = bedrock
    stubber.add_client_error(
        "converse_stream", service_error_code="AccessDeniedException", http_status_code=403
    )

    assert runner.main(customer_env(), clients=(None, client)) == 1

    finished = json_lines(capsys.readouterr().out)[-1]
    assert finished["status"] == "FAILED"
    assert finished["errorCode"] == "MODEL_ERROR"
    assert "AccessDeniedException" in finished["error"]
    assert finished["usage"] == {"inputTokens": 0, "outputTokens": 0}


def test_customer_mode_with_a_bucket_and_result_key_writes_the_result_but_reads_nothing(
    answer, s3, bedrock, s3_calls
) -> None:
    client, stubber = bedrock
    stubber.add_response("converse_stream", answer("ok"))
    result_key = f"runs/{RUN_ID}/result.json"
    env = customer_env() | {"ARTIFACTS_BUCKET": BUCKET, "RESULT_KEY": result_key}

    assert runner.main(env, clients=(s3_calls.watch(s3), client)) == 0

    assert s3_calls == ["PutObject"]
    result = json.loads(s3.get_object(Bucket=BUCKET, Key=result_key)["Body"].read())
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == "ok"


# --- SIGTERM ----------------------------------------------------------------------------


class HandlerNotInstalled(Exception):
    pass


def test_customer_mode_sigterm_during_the_model_call_logs_a_stopped_failure_and_exits_1(
    watched_s3, s3_calls, bedrock, capsys
) -> None:
    client, _ = bedrock

    def not_installed(signum: int, frame: Any) -> None:
        raise HandlerNotInstalled

    def stop_task(**_: Any) -> None:
        signal.raise_signal(signal.SIGTERM)  # the customer's StopTask, mid-call

    client.meta.events.register("provide-client-params.bedrock-runtime.ConverseStream", stop_task)
    previous = signal.signal(signal.SIGTERM, not_installed)
    try:
        with pytest.raises(SystemExit) as exited:
            runner.main(customer_env(), clients=(watched_s3, client))
        assert signal.getsignal(signal.SIGTERM) is not_installed  # main restored it
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert exited.value.code == 1
    stopped, finished = json_lines(capsys.readouterr().out)[-2:]
    assert stopped == {"event": "run.stopped", "runId": RUN_ID, "reason": CUSTOMER_STOPPED}
    assert finished == {
        "event": "run.finished",
        "runId": RUN_ID,
        "status": "FAILED",
        "stopReason": None,
        "usage": {"inputTokens": 0, "outputTokens": 0},
        "errorCode": "STOPPED",
        "error": CUSTOMER_STOPPED,
    }
    assert s3_calls == []


def test_customer_mode_sigterm_after_the_run_finished_adds_nothing(answer, bedrock, capsys) -> None:
    client, stubber = bedrock
    stubber.add_response("converse_stream", answer("done"))
    agent_runner = runner.Runner(runner.load_settings(customer_env()), s3=None, bedrock=client)
    assert agent_runner.run() == 0
    capsys.readouterr()

    agent_runner.handle_sigterm(signal.SIGTERM, None)  # returns: no SystemExit

    assert capsys.readouterr().out == ""
