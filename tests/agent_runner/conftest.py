"""Fixtures for the agent runner: S3 from moto, Bedrock Runtime stubbed (moto has no Converse)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

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


@pytest.fixture
def bedrock(s3: Any) -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("bedrock-runtime", region_name=REGION)
    with Stubber(client) as stubber:
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
