"""Constants and helpers shared by the runtime tests (fixtures live in conftest.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_builder import clients, timeutil

EVENTS = Path(__file__).resolve().parents[1] / "events"
REGION = "us-east-1"
PREFIX = "agent-builder"
TABLES = {
    "PROFILES_TABLE": f"{PREFIX}-profiles",
    "AGENTS_TABLE": f"{PREFIX}-agents",
    "RUNS_TABLE": f"{PREFIX}-runs",
    "USAGE_TABLE": f"{PREFIX}-usage",
    "ACCOUNTS_TABLE": f"{PREFIX}-accounts",
    "AUDIT_TABLE": f"{PREFIX}-audit",
    "ORGANIZATIONS_TABLE": f"{PREFIX}-organizations",
}
BUCKET = f"{PREFIX}-artifacts"
LOG_GROUP = f"/{PREFIX}/agent-runs"
SCHEDULE_GROUP = f"{PREFIX}-test-timeouts"
MODELS = ("amazon.nova-micro-v1:0", "anthropic.claude-3-haiku-20240307-v1:0")
TESTS_PER_MONTH = 3
LAUNCHES_PER_MINUTE = 100
# The owner's ceilings in these tests: small enough for a test to reach them.
MAX_RUNNING_TESTS = 4
PLATFORM_TESTS_PER_MONTH = 6
MAX_AGENTS_PER_USER = 5
PLATFORM_ACCOUNT = "123456789012"
CUSTOMER_ACCOUNT = "111111111111"
CUSTOMER_REGION = "eu-west-1"
TEMPLATE_VERSION = "1.2.0"
TEMPLATE_URL = f"https://{PREFIX}-templates.s3.{REGION}.amazonaws.com/customer-onboarding/{TEMPLATE_VERSION}.yaml"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{PLATFORM_ACCOUNT}:{PREFIX}-registrations"
LAUNCHER_ROLE_ARN = f"arn:aws:iam::{PLATFORM_ACCOUNT}:role/{PREFIX}-launcher"
CUSTOMER_ROLE_ARN = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/{PREFIX}-deployer"
RUNNER_IMAGE = f"{PLATFORM_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PREFIX}/agent-runner:abc123"
TIER2_ENV = {
    "PLATFORM_ACCOUNT_ID": PLATFORM_ACCOUNT,
    "LAUNCHER_ROLE_ARN": LAUNCHER_ROLE_ARN,
    "CUSTOMER_ROLE_NAME": f"{PREFIX}-deployer",
    "REGISTRATION_TOPIC_ARN": TOPIC_ARN,
    "TEMPLATE_VERSION": TEMPLATE_VERSION,
    "TEMPLATE_URL": TEMPLATE_URL,
    "RUNNER_IMAGE_URI": RUNNER_IMAGE,
    "ALLOW_ORGANIZATION_CREATION": "true",
}
ORGANIZATION_TEMPLATE_URL = (
    f"https://{PREFIX}-templates.s3.{REGION}.amazonaws.com/customer-onboarding/"
    f"organization-{TEMPLATE_VERSION}.yaml"
)
# Tier 3 (enterprise SSO, organisation accounts): the API's other variables.
TIER3_ENV = {
    "USER_POOL_ID": f"{REGION}_testpool",
    "USER_POOL_CLIENT_ID": "testclient",
    "SSO_TOKEN_KEY_ARN": f"arn:aws:kms:{REGION}:{PLATFORM_ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
    "ORGANIZATION_TEMPLATE_URL": ORGANIZATION_TEMPLATE_URL,
}
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
class Customer:
    """What the onboarding stack would have created in the customer's account, in moto."""

    account_id: str
    region: str
    role_arn: str
    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str
    cluster_arn: str
    log_group: str
    credentials: dict[str, Any]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=self.region,
            aws_access_key_id=self.credentials["AccessKeyId"],
            aws_secret_access_key=self.credentials["SecretAccessKey"],
            aws_session_token=self.credentials["SessionToken"],
        )


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


def api_handler(path: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler of the function API Gateway sends `path` to (ROUTES' Route.function)."""
    from constructs.control_plane_api import ORGANIZATIONS, Route
    from handlers import api, org_api

    return org_api.handler if Route("GET", path).function == ORGANIZATIONS else api.handler


def lambda_context(function_name: str = "agent-builder-api") -> Any:
    """A context the handlers accept (Powertools reads only these four fields)."""
    return FakeLambdaContext(function_name=function_name)


def set_tier(platform: Platform, tier: str, user: str = USER) -> None:
    platform.client("dynamodb").put_item(
        TableName=TABLES["PROFILES_TABLE"],
        Item={
            "userId": {"S": user},
            "tier": {"S": tier},
            "createdAt": {"S": "2025-01-01T00:00:00.000Z"},
        },
    )


def tier_of(platform: Platform, user: str = USER) -> str | None:
    for item in platform.table_items("PROFILES_TABLE"):
        if item["userId"] == user:
            return str(item["tier"])
    return None


def audit_records(platform: Platform, action: str | None = None) -> list[dict[str, Any]]:
    records = sorted(platform.table_items("AUDIT_TABLE"), key=lambda item: item["eventId"])
    return [r for r in records if action is None or r["action"] == action]


@dataclass
class _FakeHttp:
    status_code: int


def aws_error(
    code: str, *, status: int = 403, when: Callable[[dict[str, Any]], bool] = lambda _: True
) -> Callable[..., Any]:
    """A botocore `before-call` hook: the call fails with `code`, without reaching moto."""

    def hook(params: dict[str, Any], **_: Any) -> Any:
        if not when(params):
            return None
        return _FakeHttp(status), {
            "Error": {"Code": code, "Message": f"test: {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    return hook


def aws_answer(parsed: dict[str, Any]) -> Callable[..., Any]:
    """A botocore `before-call` hook: the call answers `parsed`, without reaching moto."""

    def hook(**_: Any) -> Any:
        return _FakeHttp(200), {**parsed, "ResponseMetadata": {"HTTPStatusCode": 200}}

    return hook


TASK_STARTED = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def stopped_task(task_arn: str) -> Callable[..., Any]:
    """A `before-call` hook for DescribeTasks: the task ran from TASK_STARTED for a minute
    and its runner exited 0 (what a customer or organisation account's ECS would say)."""
    return aws_answer(
        {
            "tasks": [
                {
                    "taskArn": task_arn,
                    "lastStatus": "STOPPED",
                    "startedAt": TASK_STARTED,
                    "stoppedAt": TASK_STARTED.replace(minute=1),
                    "stopCode": "EssentialContainerExited",
                    "stoppedReason": "Essential container in task exited",
                    "containers": [{"name": "runner", "exitCode": 0}],
                }
            ],
            "failures": [],
        }
    )


def onboard(api: ApiCall, **body: Any) -> Answer:
    return api("POST", "/aws-account/onboarding", body=body)


def paste_connect(api: ApiCall, customer: Customer, **overrides: Any) -> Answer:
    """Onboard (once) and connect the customer's role by pasting its ARN."""
    external_id = overrides.pop("externalId", None) or onboard(api).body["externalId"]
    body = {
        "roleArn": customer.role_arn,
        "externalId": external_id,
        "region": customer.region,
        **overrides,
    }
    return api("PUT", "/aws-account", body=body)


def put_run_without_task(
    platform: Platform, run_id: str, created: datetime, **attributes: dict[str, Any]
) -> str:
    """A launch whose function died between the charge and RunTask: a platform run left
    PENDING without a task, charged to `created`'s month. `attributes` are extra stored
    attributes in DynamoDB's shape. Returns the usage period it was charged to."""
    period = f"tests#{timeutil.month(created)}"
    platform.client("dynamodb").put_item(
        TableName=platform.env["RUNS_TABLE"],
        Item={
            "runId": {"S": run_id},
            "userId": {"S": USER},
            "agentId": {"S": "a"},
            "kind": {"S": "test"},
            "target": {"S": "platform"},
            "status": {"S": "PENDING"},
            "statusRank": {"N": "0"},
            "createdAt": {"S": timeutil.iso(created)},
            "period": {"S": period},
            **attributes,
        },
    )
    return period
