"""Run records from ECS task state-change events; GET /runs and GET /runs/{runId}."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent_builder import timeutil
from handlers import task_events
from tests.runtime.support import (
    OTHER_USER,
    SCHEDULE_GROUP,
    USER,
    ApiCall,
    Platform,
    lambda_context,
    put_run_without_task,
    task_event,
)


def launched(api: ApiCall, agent_id: str, platform: Platform) -> tuple[str, str]:
    run_id = api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).body["runId"]
    [task_arn] = platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]
    return run_id, task_arn


def deliver(platform: Platform, run_id: str, task_arn: str, **detail: Any) -> str:
    event = task_event(platform, run_id, task_arn, **detail)
    return task_events.handler(event, lambda_context(function_name="agent-builder-taskevents"))[
        "result"
    ]


RUNNING = {"lastStatus": "RUNNING", "startedAt": "2025-01-15T12:00:30.000Z"}
STOPPED = {
    "lastStatus": "STOPPED",
    "desiredStatus": "STOPPED",
    "startedAt": "2025-01-15T12:00:30.000Z",
    "stoppedAt": "2025-01-15T12:02:00.500Z",
    "stopCode": "EssentialContainerExited",
    "stoppedReason": "Essential container in task exited",
    "containers": [{"name": "runner", "lastStatus": "STOPPED", "exitCode": 0}],
}
TIME_LIMIT = {
    **STOPPED,
    "stopCode": "UserInitiated",
    "stoppedReason": "agent-builder: time limit of 5 minutes reached",
    "containers": [{"name": "runner", "lastStatus": "STOPPED", "exitCode": 143}],
}


def test_run_follows_its_task_from_pending_to_running_to_stopped(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)

    assert deliver(platform, run_id, task_arn) == "applied"
    pending = api("GET", f"/runs/{run_id}").body
    assert pending["status"] == "PENDING"

    assert deliver(platform, run_id, task_arn, **RUNNING) == "applied"
    running = api("GET", f"/runs/{run_id}").body
    assert running["status"] == "RUNNING"
    assert running["startedAt"] == "2025-01-15T12:00:30.000Z"

    assert deliver(platform, run_id, task_arn, **STOPPED) == "applied"
    stopped = api("GET", f"/runs/{run_id}").body
    assert stopped["status"] == "STOPPED"
    assert stopped["stoppedAt"] == "2025-01-15T12:02:00.500Z"
    assert stopped["exitCode"] == 0
    assert stopped["stopReason"] == "Essential container in task exited"


def test_finished_run_expires_after_the_retention_period(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)

    deliver(platform, run_id, task_arn, **STOPPED)

    [run] = platform.table_items("RUNS_TABLE")
    stopped = timeutil.parse_iso(STOPPED["stoppedAt"])  # type: ignore[arg-type]
    assert run["expiresAt"] == timeutil.epoch(stopped + timedelta(days=30))


def test_run_stopped_at_the_time_limit_records_the_reason_and_exit_code(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)

    deliver(platform, run_id, task_arn, **TIME_LIMIT)

    run = api("GET", f"/runs/{run_id}").body
    assert run["stopReason"] == "agent-builder: time limit of 5 minutes reached"
    assert run["exitCode"] == 143


def test_events_out_of_order_never_move_a_run_backwards(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)

    assert deliver(platform, run_id, task_arn, **STOPPED) == "applied"
    assert deliver(platform, run_id, task_arn, **RUNNING) == "stale"
    assert deliver(platform, run_id, task_arn) == "stale"
    assert deliver(platform, run_id, task_arn, **{**STOPPED, "stoppedReason": "again"}) == "stale"

    run = api("GET", f"/runs/{run_id}").body
    assert run["status"] == "STOPPED"
    assert run["stopReason"] == "Essential container in task exited"


def test_pending_event_after_running_is_ignored(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)
    deliver(platform, run_id, task_arn, **RUNNING)

    assert deliver(platform, run_id, task_arn, lastStatus="PENDING") == "stale"
    assert api("GET", f"/runs/{run_id}").body["status"] == "RUNNING"


def test_stopped_task_deletes_its_time_limit_schedule(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)
    scheduler = platform.client("scheduler")
    assert scheduler.get_schedule(Name=run_id, GroupName=SCHEDULE_GROUP)

    deliver(platform, run_id, task_arn, **STOPPED)

    assert scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    # A second STOPPED event finds no schedule and is fine with it.
    assert deliver(platform, run_id, task_arn, **STOPPED) == "stale"


def test_task_that_never_started_gives_the_test_back(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)
    assert platform.tests_used() == 1

    result = deliver(
        platform,
        run_id,
        task_arn,
        lastStatus="STOPPED",
        stopCode="TaskFailedToStart",
        stoppedReason="CannotPullContainerError",
        stoppedAt="2025-01-15T12:01:00.000Z",
    )

    assert result == "refunded"
    assert platform.tests_used() == 0
    assert api("GET", f"/runs/{run_id}").body["status"] == "STOPPED"
    # Delivered twice, it refunds once.
    deliver(platform, run_id, task_arn, lastStatus="STOPPED", stopCode="TaskFailedToStart")
    assert platform.tests_used() == 0


def test_task_that_ran_and_exited_keeps_its_test_counted(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)

    deliver(
        platform, run_id, task_arn, **{**STOPPED, "containers": [{"name": "runner", "exitCode": 1}]}
    )

    assert platform.tests_used() == 1
    assert api("GET", f"/runs/{run_id}").body["exitCode"] == 1


@pytest.mark.parametrize(
    "detail",
    [
        {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/someone-else"},
        {"startedBy": "ecs-svc/1234567890"},
        {"startedBy": None},
    ],
)
def test_events_not_about_a_run_are_ignored(
    api: ApiCall, agent_id: str, platform: Platform, detail: dict[str, Any]
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)
    before = platform.snapshot()

    assert deliver(platform, run_id, task_arn, **detail) == "ignored"
    assert platform.snapshot() == before


def test_event_for_an_unknown_run_changes_nothing(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    launched(api, agent_id, platform)
    before = platform.snapshot()

    assert (
        deliver(
            platform, "00000000-0000-4000-8000-000000000000", "arn:aws:ecs:x:1:task/c/t", **RUNNING
        )
        == "stale"
    )
    assert platform.snapshot() == before


def test_event_from_a_second_task_cannot_take_over_a_run(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = launched(api, agent_id, platform)
    deliver(platform, run_id, task_arn, **RUNNING)

    assert deliver(platform, run_id, task_arn + "-other", **STOPPED) == "stale"
    assert api("GET", f"/runs/{run_id}").body["status"] == "RUNNING"


def test_another_users_run_answers_404(api: ApiCall, agent_id: str, platform: Platform) -> None:
    run_id, _ = launched(api, agent_id, platform)

    for path in (f"/runs/{run_id}", f"/runs/{run_id}/logs"):
        answer = api("GET", path, user=OTHER_USER)
        assert answer.status == 404
        assert answer.error_code == "RUN_NOT_FOUND"


@pytest.mark.parametrize("run_id", ["nope", "00000000-0000-4000-8000-000000000000"])
def test_missing_run_answers_404(api: ApiCall, platform: Platform, run_id: str) -> None:
    assert api("GET", f"/runs/{run_id}").status == 404


def test_list_runs_newest_first_in_pages_and_only_the_callers(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    mine = [
        api("POST", f"/agents/{agent_id}/tests", body={"input": f"{i}"}).body["runId"]
        for i in range(3)
    ]
    other_agent = api(
        "POST",
        "/agents",
        body={"name": "x", "model": "amazon.nova-micro-v1:0", "instructions": "x"},
        user=OTHER_USER,
    ).body["agentId"]
    api("POST", f"/agents/{other_agent}/tests", body={"input": "theirs"}, user=OTHER_USER)

    first = api("GET", "/runs", query={"limit": "2"})
    second = api("GET", "/runs", query={"limit": "2", "nextToken": first.body["nextToken"]})

    listed = [run["runId"] for run in first.body["runs"] + second.body["runs"]]
    assert sorted(listed) == sorted(mine)
    created = [run["createdAt"] for run in first.body["runs"] + second.body["runs"]]
    assert created == sorted(created, reverse=True)
    assert (
        second.body["nextToken"] is None
        or api("GET", "/runs", query={"nextToken": second.body["nextToken"]}).body["runs"] == []
    )


def test_list_runs_refuses_a_forged_token(api: ApiCall, platform: Platform) -> None:
    answer = api("GET", "/runs", query={"nextToken": "eyJydW5JZCI6IngifQ"})

    assert answer.status == 400
    assert answer.error_code == "INVALID_NEXT_TOKEN"


def test_run_that_never_got_a_task_is_failed_and_refunded_when_read(
    api: ApiCall, platform: Platform
) -> None:
    # A launch whose function died between the charge and RunTask: PENDING, no task.
    created = timeutil.utcnow() - timedelta(minutes=10)
    run_id = "11111111-1111-4111-8111-111111111111"
    period = put_run_without_task(platform, run_id, created)
    platform.client("dynamodb").put_item(
        TableName=platform.env["USAGE_TABLE"],
        Item={"userId": {"S": USER}, "period": {"S": period}, "testsUsed": {"N": "1"}},
    )

    run = api("GET", f"/runs/{run_id}").body

    assert run["status"] == "FAILED"
    assert "never started" in run["stopReason"]
    assert platform.tests_used() == 0
    assert api("GET", "/runs").body["runs"][0]["status"] == "FAILED"
    assert platform.tests_used() == 0


def test_fresh_pending_run_is_left_alone(api: ApiCall, agent_id: str, platform: Platform) -> None:
    run_id = api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).body["runId"]

    assert api("GET", f"/runs/{run_id}").body["status"] == "PENDING"
    assert platform.tests_used() == 1


def test_task_events_handler_ignores_other_event_types(platform: Platform) -> None:
    result = task_events.handler({"detail-type": "Scheduled Event", "id": "1"}, lambda_context())

    assert result == {"result": "ignored"}
