"""Fixtures for the agent runner: S3 from moto, Bedrock Runtime's ConverseStream stubbed.

moto has no Bedrock, and botocore's Stubber cannot answer an event-stream operation, so
ConverseStreamStub answers at the HTTP layer with real event-stream bytes (the same
framing local mode's Bedrock stand-in sends): botocore's own parser decodes them, as it
does Bedrock's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.core.models import botocore_stubber

from local_mode import eventstream

REGION = "us-east-1"
BUCKET = "agent-builder-artifacts"
RUN_ID = "3f6c1a52-0d0e-4b8f-9a51-2f1f6a0c7e11"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def env() -> dict[str, str]:
    return {
        "RUN_ID": RUN_ID,
        "ARTIFACTS_BUCKET": BUCKET,
        "REQUEST_KEY": f"runs/{RUN_ID}/request.json",
        "RESULT_KEY": f"runs/{RUN_ID}/result.json",
        "AWS_REGION": REGION,
    }


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


class _Body:
    """An HTTP body botocore can read whole or stream, a few bytes at a time."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, amt: int = 1024, decode_content: bool = False) -> Iterator[bytes]:
        for start in range(0, len(self._data), 7):  # split frames across reads
            yield self._data[start : start + 7]

    def read(self, *args: Any) -> bytes:
        return self._data

    def close(self) -> None:
        pass


class ConverseStreamStub:
    """Stubber's interface (the parts these tests use) for ConverseStream.

    A response is given as Converse's response document (text blocks, stopReason,
    usage) and sent as the event stream Bedrock would send for it, each text in chunks.
    """

    OPERATION = "converse_stream"
    CHUNK = 5

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queue: list[tuple[int, bytes, dict[str, Any] | None, dict[str, str]]] = []

    def __enter__(self) -> ConverseStreamStub:
        # moto answers every request while mock_aws is on (and raises for Bedrock): this
        # client's requests are ours to answer instead.
        self._client.meta.events.unregister("before-send", botocore_stubber)
        self._client.meta.events.register_first("before-send", self._send)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.meta.events.unregister("before-send", self._send)

    def add_response(
        self,
        operation: str,
        response: dict[str, Any],
        expected_params: dict[str, Any] | None = None,
    ) -> None:
        assert operation == self.OPERATION, f"the runner calls {self.OPERATION}, not {operation}"
        body = eventstream.event("messageStart", {"role": "assistant"})
        for index, block in enumerate(response["output"]["message"]["content"]):
            if "text" in block:
                text = block["text"]
                deltas = [
                    {"text": text[i : i + self.CHUNK]} for i in range(0, len(text), self.CHUNK)
                ]
            else:
                reasoning = block["reasoningContent"]["reasoningText"]["text"]
                deltas = [{"reasoningContent": {"text": reasoning}}]
            for delta in deltas:
                body += eventstream.event(
                    "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
                )
            body += eventstream.event("contentBlockStop", {"contentBlockIndex": index})
        body += eventstream.event("messageStop", {"stopReason": response["stopReason"]})
        body += eventstream.event(
            "metadata", {"usage": response["usage"], "metrics": response.get("metrics", {})}
        )
        self._queue.append((200, body, expected_params, {"content-type": eventstream.CONTENT_TYPE}))

    def add_stream(self, operation: str, body: bytes) -> None:
        """Raw event-stream bytes: an answer that fails half-way, for instance."""
        assert operation == self.OPERATION
        self._queue.append((200, body, None, {"content-type": eventstream.CONTENT_TYPE}))

    def add_client_error(
        self,
        operation: str,
        service_error_code: str,
        service_message: str = "",
        http_status_code: int = 400,
    ) -> None:
        assert operation == self.OPERATION
        body = json.dumps({"message": service_message}).encode()
        headers = {"content-type": "application/json", "x-amzn-errortype": service_error_code}
        self._queue.append((http_status_code, body, None, headers))

    def assert_no_pending_responses(self) -> None:
        assert not self._queue, f"{len(self._queue)} stubbed responses were not used"

    def _send(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        if not request.url.endswith("/converse-stream"):
            return None
        assert self._queue, "an unexpected ConverseStream call"
        status, body, expected, headers = self._queue.pop(0)
        if expected is not None:
            sent = json.loads(request.body) | {
                "modelId": unquote(request.url.split("/model/", 1)[1].rsplit("/", 1)[0])
            }
            assert sent == expected
        return AWSResponse(request.url, status, headers, _Body(body))


@pytest.fixture
def bedrock(s3: Any) -> Iterator[tuple[Any, ConverseStreamStub]]:
    client = boto3.client("bedrock-runtime", region_name=REGION)
    with ConverseStreamStub(client) as stubber:
        yield client, stubber


@pytest.fixture
def request_doc() -> dict[str, Any]:
    return {
        "runId": RUN_ID,
        "agent": {
            "name": "support-bot",
            "model": MODEL,
            "instructions": "You answer briefly.",
            "parameters": {"temperature": 0.2, "maxTokens": 512},
        },
        "input": "What is Fargate?",
    }


@pytest.fixture
def put_request(s3: Any, env: dict[str, str]) -> Any:
    def put(document: Any) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        s3.put_object(Bucket=BUCKET, Key=env["REQUEST_KEY"], Body=body)

    return put


@pytest.fixture
def read_result(s3: Any, env: dict[str, str]) -> Any:
    def read() -> dict[str, Any]:
        body = s3.get_object(Bucket=BUCKET, Key=env["RESULT_KEY"])["Body"].read()
        return json.loads(body)

    return read


def converse_response(text: str, *, stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 21, "outputTokens": 34, "totalTokens": 55},
        "metrics": {"latencyMs": 812},
    }


@pytest.fixture
def answer() -> Any:
    return converse_response


def output_text(stdout: str) -> str:
    """The answer as a reader of the log rebuilds it: the output events' texts, in order."""
    events = [json.loads(line) for line in stdout.splitlines()]
    return "".join(e["text"] for e in events if e["event"] == "output")
