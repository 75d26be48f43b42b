"""POST /agents/{id}/tests and /deployments: charge, launch, time limit, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from agent_builder import timeutil
from agent_builder.validation import MAX_INPUT_BYTES
from tests.runtime.support import (
    AGENT,
    BUCKET,
    LAUNCHES_PER_MINUTE,
    OTHER_USER,
    SCHEDULE_GROUP,
    TESTS_PER_MONTH,
    USER,
    ApiCall,
    Platform,
)


def launch(
    api: ApiCall, agent_id: str, *, key: str | None = None, text: str = "Hello", **kwargs: Any
) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api("POST", f"/agents/{agent_id}/tests", body={"input": text}, headers=headers, **kwargs)


def set_tier(platform: Platform, tier: str) -> None:
    platform.client("dynamodb").put_item(
        TableName=platform.env["PROFILES_TABLE"],
        Item={
            "userId": {"S": USER},
            "tier": {"S": tier},
            "createdAt": {"S": "2025-01-01T00:00:00.000Z"},
        },
    )


def test_test_launch_answers_202_with_a_pending_platform_run(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    answer = launch(api, agent_id)

    assert answer.status == 202
    assert answer.body["status"] == "PENDING"
    assert answer.body["target"] == "platform"
    assert answer.body["kind"] == "test"
    assert answer.body["accountId"] == "123456789012" and answer.body["region"] == "us-east-1"
    assert platform.tests_used() == 1


def test_test_launch_writes_the_request_document_the_runner_reads(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = launch(api, agent_id, text="What is 2+2?").body["runId"]

    body = (
        platform.client("s3")
        .get_object(Bucket=BUCKET, Key=f"runs/{run_id}/request.json")["Body"]
        .read()
    )
    assert json.loads(body) == {
        "runId": run_id,
        "agent": {
            "name": AGENT["name"],
            "model": AGENT["model"],
            "instructions": AGENT["instructions"],
            "parameters": {"temperature": 0.2, "maxTokens": 256},
        },
        "input": "What is 2+2?",
    }


def test_test_launch_starts_one_tagged_runner_task_named_by_the_run(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = launch(api, agent_id).body["runId"]

    ecs = platform.client("ecs")
    [arn] = ecs.list_tasks(cluster=platform.cluster_arn)["taskArns"]
    [task] = ecs.describe_tasks(cluster=platform.cluster_arn, tasks=[arn], include=["TAGS"])[
        "tasks"
    ]
    assert task["startedBy"] == run_id
    assert task["taskDefinitionArn"] == platform.task_definition_arn
    tags = {tag["key"]: tag["value"] for tag in task["tags"]}
    assert tags == {
        "Project": "agent-builder",
        "userId": USER,
        "agentId": agent_id,
        "runId": run_id,
    }
    [override] = task["overrides"]["containerOverrides"]
    assert override["name"] == "runner"
    assert {e["name"]: e["value"] for e in override["environment"]} == {
        "RUN_ID": run_id,
        "ARTIFACTS_BUCKET": BUCKET,
        "REQUEST_KEY": f"runs/{run_id}/request.json",
        "RESULT_KEY": f"runs/{run_id}/result.json",
    }


def test_run_task_request_uses_spot_and_a_public_ip_in_the_platform_subnets(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    ecs = platform.client("ecs")
    with Stubber(ecs) as stubber:
        stubber.add_response(
            "run_task",
            {
                "tasks": [
                    {"taskArn": f"{platform.cluster_arn.replace(':cluster/', ':task/')}/abc"}
                ],
                "failures": [],
            },
            {
                "cluster": platform.cluster_arn,
                "taskDefinition": platform.task_definition_arn,
                "count": 1,
                "startedBy": ANY,
                "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": [platform.subnet_id],
                        "securityGroups": [platform.security_group_id],
                        "assignPublicIp": "ENABLED",
                    }
                },
                "overrides": ANY,
                "tags": ANY,
                "enableECSManagedTags": True,
            },
        )
        assert launch(api, agent_id).status == 202
        stubber.assert_no_pending_responses()


def test_each_test_gets_a_one_time_schedule_that_stops_its_task_at_the_limit(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    answer = launch(api, agent_id)
    run_id = answer.body["runId"]
    created = timeutil.parse_iso(answer.body["createdAt"])

    schedule = platform.client("scheduler").get_schedule(Name=run_id, GroupName=SCHEDULE_GROUP)

    [task_arn] = platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:ecs:stopTask"
    assert schedule["Target"]["RoleArn"] == platform.env["SCHEDULER_ROLE_ARN"]
    assert json.loads(schedule["Target"]["Input"]) == {
        "Cluster": platform.cluster_arn,
        "Task": task_arn,
        "Reason": "agent-builder: time limit of 5 minutes reached",
    }
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    at = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(
        tzinfo=UTC
    )
    assert timedelta(minutes=5) <= at - created <= timedelta(minutes=5, seconds=1)


def test_quota_reached_answers_429_with_reset_time_and_retry_after(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    for _ in range(TESTS_PER_MONTH):
        assert launch(api, agent_id).status == 202
    before = platform.snapshot()

    answer = launch(api, agent_id)

    assert answer.status == 429
    assert answer.error_code == "QUOTA_EXCEEDED"
    reset = timeutil.iso(timeutil.next_month_start(timeutil.utcnow()))
    assert reset in answer.body["error"]["message"]
    retry_after = int(answer.headers["retry-after"])
    expected = (timeutil.next_month_start(timeutil.utcnow()) - timeutil.utcnow()).total_seconds()
    assert abs(retry_after - expected) < 5
    # Nothing charged or stored; only the refusal's audit record (test_audit.py).
    after = platform.snapshot()
    [refused] = [r for r in after["AUDIT_TABLE"] if r["action"] == "launch.refused"]
    after["AUDIT_TABLE"].remove(refused)
    assert after == before
    assert (
        len(platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"])
        == TESTS_PER_MONTH
    )


def test_quota_is_per_user(api: ApiCall, agent_id: str, platform: Platform) -> None:
    for _ in range(TESTS_PER_MONTH):
        launch(api, agent_id)
    other_agent = api("POST", "/agents", body=AGENT, user=OTHER_USER).body["agentId"]

    assert launch(api, other_agent, user=OTHER_USER).status == 202


def test_me_reports_the_tests_used(api: ApiCall, agent_id: str) -> None:
    launch(api, agent_id)
    launch(api, agent_id)

    assert api("GET", "/me").body["usage"]["testsUsed"] == 2


def test_idempotent_retry_returns_the_same_run_and_is_not_counted_twice(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    first = launch(api, agent_id, key="click-1")
    second = launch(api, agent_id, key="click-1")

    assert first.status == second.status == 202
    assert second.body["runId"] == first.body["runId"]
    assert platform.tests_used() == 1
    assert len(platform.table_items("RUNS_TABLE")) == 1
    assert len(platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]) == 1


def test_idempotent_retry_is_answered_even_when_the_quota_is_spent(
    api: ApiCall, agent_id: str
) -> None:
    runs = [launch(api, agent_id, key=f"k{i}").body["runId"] for i in range(TESTS_PER_MONTH)]

    answer = launch(api, agent_id, key="k0")

    assert answer.status == 202 and answer.body["runId"] == runs[0]


def test_same_idempotency_key_with_a_different_body_is_409(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    launch(api, agent_id, key="click-1", text="one")
    before = platform.snapshot()

    answer = launch(api, agent_id, key="click-1", text="two")

    assert answer.status == 409
    assert answer.error_code == "IDEMPOTENCY_KEY_REUSED"
    assert platform.snapshot() == before


def test_same_idempotency_key_from_another_user_is_another_run(api: ApiCall, agent_id: str) -> None:
    other_agent = api("POST", "/agents", body=AGENT, user=OTHER_USER).body["agentId"]

    mine = launch(api, agent_id, key="k")
    theirs = launch(api, other_agent, key="k", user=OTHER_USER)

    assert mine.body["runId"] != theirs.body["runId"]


def test_rate_limit_answers_429_with_retry_after(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    # More launches per minute than allowed: the window's counter refuses the next one.
    window = timeutil.minute_window(timeutil.utcnow())
    platform.client("dynamodb").put_item(
        TableName=platform.env["USAGE_TABLE"],
        Item={
            "userId": {"S": USER},
            "period": {"S": f"launches#{window}"},
            "launches": {"N": str(LAUNCHES_PER_MINUTE)},
        },
    )

    answer = launch(api, agent_id)

    if timeutil.minute_window(timeutil.utcnow()) != window:
        pytest.skip("the minute turned during the test")
    assert answer.status == 429
    assert answer.error_code == "RATE_LIMITED"
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert platform.tests_used() == 0


def fail_run_task(
    platform: Platform, reason: str = "Capacity is unavailable at this time"
) -> Stubber:
    stubber = Stubber(platform.client("ecs"))
    stubber.add_response("run_task", {"tasks": [], "failures": [{"arn": "x", "reason": reason}]})
    return stubber


def test_run_task_failures_mark_the_run_failed_and_refund_the_test(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    with fail_run_task(platform):
        answer = launch(api, agent_id)

    assert answer.status == 503
    assert answer.error_code == "LAUNCH_FAILED"
    assert platform.tests_used() == 0
    [run] = platform.table_items("RUNS_TABLE")
    assert run["status"] == "FAILED"
    assert "Capacity is unavailable" in run["stopReason"]
    assert run["refunded"] is True


def test_failed_launch_replayed_with_its_key_fails_again_without_charging(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    with fail_run_task(platform):
        launch(api, agent_id, key="k")

    answer = launch(api, agent_id, key="k")

    assert answer.status == 503
    assert "new Idempotency-Key" in answer.body["error"]["message"]
    assert platform.tests_used() == 0
    assert launch(api, agent_id, key="k2").status == 202


def test_artifacts_write_failure_refunds_the_test_and_starts_no_task(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    platform.client("s3").delete_bucket(Bucket=BUCKET)

    answer = launch(api, agent_id)

    assert answer.status == 503
    assert platform.tests_used() == 0
    assert platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"] == []


def test_schedule_failure_stops_the_started_task_and_refunds(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    with Stubber(platform.client("scheduler")) as stubber:
        stubber.add_client_error(
            "create_schedule", "ServiceUnavailableException", http_status_code=503
        )
        answer = launch(api, agent_id)

    assert answer.status == 503
    assert platform.tests_used() == 0
    ecs = platform.client("ecs")
    [arn] = ecs.list_tasks(cluster=platform.cluster_arn, desiredStatus="STOPPED")["taskArns"]
    [task] = ecs.describe_tasks(cluster=platform.cluster_arn, tasks=[arn])["tasks"]
    assert task["stoppedReason"].startswith("agent-builder: launch failed")


def test_freemium_deployment_runs_on_the_platform_and_counts_as_a_test(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    answer = api("POST", f"/agents/{agent_id}/deployments", body={"input": "go"})

    assert answer.status == 202
    assert answer.body["target"] == "platform"
    assert answer.body["kind"] == "deployment"
    assert answer.body["accountId"] == "123456789012"
    assert platform.tests_used() == 1


def test_freemium_deployment_is_refused_when_the_quota_is_spent(
    api: ApiCall, agent_id: str
) -> None:
    for _ in range(TESTS_PER_MONTH):
        launch(api, agent_id)

    answer = api("POST", f"/agents/{agent_id}/deployments", body={})

    assert answer.status == 429
    assert answer.error_code == "QUOTA_EXCEEDED"


def test_deployment_without_input_sends_the_default_prompt(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = api("POST", f"/agents/{agent_id}/deployments", body={}).body["runId"]

    body = (
        platform.client("s3")
        .get_object(Bucket=BUCKET, Key=f"runs/{run_id}/request.json")["Body"]
        .read()
    )
    assert json.loads(body)["input"] == "Start."


@pytest.mark.parametrize(
    ("tier", "status", "code"),
    [
        ("personal", 409, "ACCOUNT_NOT_CONNECTED"),
        ("enterprise", 409, "NO_ENTERPRISE_TARGET"),
        ("platinum", 409, "UNKNOWN_TIER"),
    ],
)
def test_deployments_of_other_tiers_are_refused_until_their_targets_exist(
    api: ApiCall, agent_id: str, platform: Platform, tier: str, status: int, code: str
) -> None:
    set_tier(platform, tier)
    before = platform.snapshot()

    answer = api("POST", f"/agents/{agent_id}/deployments", body={"input": "go"})

    assert answer.status == status
    assert answer.error_code == code
    assert platform.snapshot() == before


def test_connected_users_tests_still_run_on_the_platform_and_count(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    set_tier(platform, "personal")

    answer = launch(api, agent_id)

    assert answer.status == 202 and answer.body["target"] == "platform"
    assert platform.tests_used() == 1


@pytest.mark.parametrize("route", ["tests", "deployments"])
def test_launching_another_users_agent_answers_404_and_writes_nothing(
    api: ApiCall, agent_id: str, platform: Platform, route: str
) -> None:
    before = platform.snapshot()

    answer = api("POST", f"/agents/{agent_id}/{route}", body={"input": "x"}, user=OTHER_USER)

    assert answer.status == 404
    assert answer.error_code == "AGENT_NOT_FOUND"
    assert platform.snapshot() == before


BAD_LAUNCHES: list[tuple[str, dict[str, Any], Any]] = [
    ("input over 8 KiB in UTF-8", {}, {"input": "é" * (MAX_INPUT_BYTES // 2 + 1)}),
    ("input over 8 KiB in characters", {}, {"input": "a" * (MAX_INPUT_BYTES + 1)}),
    ("blank input", {}, {"input": "   "}),
    ("empty input", {}, {"input": ""}),
    ("input as a number", {}, {"input": 42}),
    ("missing input", {}, {}),
    ("unknown field", {}, {"input": "x", "priority": "high"}),
    ("idempotency key with spaces", {"Idempotency-Key": "a b"}, {"input": "x"}),
    ("idempotency key too long", {"Idempotency-Key": "k" * 129}, {"input": "x"}),
    ("body is a list", {}, [{"input": "x"}]),
]


@pytest.mark.parametrize(
    ("why", "headers", "body"), BAD_LAUNCHES, ids=[why for why, _, _ in BAD_LAUNCHES]
)
def test_invalid_test_request_is_400_and_writes_nothing(
    api: ApiCall, agent_id: str, platform: Platform, why: str, headers: dict[str, str], body: Any
) -> None:
    before = platform.snapshot()

    answer = api("POST", f"/agents/{agent_id}/tests", body=body, headers=headers)

    assert answer.status == 400, (why, answer.body)
    assert answer.error_code == "VALIDATION_ERROR"
    assert platform.snapshot() == before
    assert platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"] == []


def test_malformed_json_launch_is_400_and_writes_nothing(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    before = platform.snapshot()

    answer = api("POST", f"/agents/{agent_id}/tests", raw_body="{input: hello}")

    assert answer.status == 400
    assert platform.snapshot() == before


def test_launch_of_a_missing_agent_answers_404(api: ApiCall, platform: Platform) -> None:
    answer = launch(api, "00000000-0000-4000-8000-000000000000")

    assert answer.status == 404
    assert platform.table_items("RUNS_TABLE") == []
