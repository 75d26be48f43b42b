"""Constants and helpers shared by the runtime tests (fixtures live in conftest.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_builder import clients

EVENTS = Path(__file__).resolve().parents[1] / "events"
REGION = "us-east-1"
PREFIX = "agent-builder"
TABLES = {
    "PROFILES_TABLE": f"{PREFIX}-profiles",
    "AGENTS_TABLE": f"{PREFIX}-agents",
    "RUNS_TABLE": f"{PREFIX}-runs",
    "USAGE_TABLE": f"{PREFIX}-usage",
}
BUCKET = f"{PREFIX}-artifacts"
LOG_GROUP = f"/{PREFIX}/agent-runs"
SCHEDULE_GROUP = f"{PREFIX}-test-timeouts"
MODELS = ("amazon.nova-micro-v1:0", "anthropic.claude-3-haiku-20240307-v1:0")
TESTS_PER_MONTH = 3
LAUNCHES_PER_MINUTE = 100
USER = "6f1d2c3b-0000-4000-8000-00000000a11c"
OTHER_USER = "6f1d2c3b-0000-4000-8000-000000000b0b"


@dataclass
class Platform:
    """What the control-plane stack would have created, in moto."""

    cluster_arn: str
    task_definition_arn: str
    subnet_id: str
    security_group_id: str
    env: dict[str, str]

    def client(self, service: str) -> Any:
        return clients.client(service)

    def table_items(self, key: str) -> list[dict[str, Any]]:
        from agent_builder.repositories.dynamo import from_item

        response = self.client("dynamodb").scan(TableName=TABLES[key])
        return [from_item(item) for item in response["Items"]]

    def tests_used(self, user: str = USER) -> int:
        for item in self.table_items("USAGE_TABLE"):
            if item["userId"] == user and item["period"].startswith("tests#"):
                return int(item["testsUsed"])
        return 0

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of every table, to assert that a refused request wrote nothing."""
        return {key: sorted(self.table_items(key), key=repr) for key in TABLES}


@dataclass
class FakeLambdaContext:
    function_name: str = "agent-builder-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:agent-builder-api"
    aws_request_id: str = "00000000-0000-4000-8000-000000000001"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str:
        return str(self.body["error"]["code"])


def http_event(
    method: str,
    path: str,
    *,
    user: str | None = USER,
    email: str | None = "ada@example.com",
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(
        json.loads((EVENTS / "http_api_request.json").read_text())
    )
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["routeKey"] = f"{method} {path}"
    claims: dict[str, str] = {}
    if user is not None:
        claims["sub"] = user
    if email is not None:
        claims["email"] = email
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    return event


ApiCall = Callable[..., Answer]


AGENT = {
    "name": "Helpful bot",
    "model": MODELS[0],
    "instructions": "You answer briefly.",
    "parameters": {"temperature": 0.2, "maxTokens": 256},
}


def task_event(platform: Platform, run_id: str, task_arn: str, **detail: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "ecs_task_state_change.json").read_text())
    event["detail"].update(
        {"clusterArn": platform.cluster_arn, "taskArn": task_arn, "startedBy": run_id}
    )
    event["detail"].update(detail)
    return event


def lambda_context(function_name: str = "agent-builder-api") -> Any:
    """A context the handlers accept (Powertools reads only these four fields)."""
    return FakeLambdaContext(function_name=function_name)
