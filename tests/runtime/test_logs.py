"""GET /runs/{runId}/logs: CloudWatch Logs page by page, while the task runs."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

from agent_builder import timeutil
from tests.runtime.support import LOG_GROUP, ApiCall, Platform, lambda_context, task_event

# CloudWatch (and moto) drop events older than 14 days: stamp them now.
NOW_MS = int(time.time() * 1000) // 1000 * 1000


def started_run(api: ApiCall, agent_id: str, platform: Platform) -> tuple[str, str]:
    from handlers import task_events

    run_id = api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).body["runId"]
    [task_arn] = platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]
    event = task_event(
        platform, run_id, task_arn, lastStatus="RUNNING", startedAt="2025-01-15T12:00:30Z"
    )
    task_events.handler(event, lambda_context())
    return run_id, task_arn


def write_lines(platform: Platform, task_arn: str, count: int, start: int = 0) -> None:
    logs = platform.client("logs")
    stream = f"runs/runner/{task_arn.rsplit('/', 1)[-1]}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[
            {"timestamp": NOW_MS + i, "message": f"line {i}"} for i in range(start, start + count)
        ],
    )


def test_logs_of_a_pending_run_are_an_empty_page(api: ApiCall, agent_id: str) -> None:
    run_id = api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).body["runId"]

    answer = api("GET", f"/runs/{run_id}/logs")

    assert answer.status == 200
    assert answer.body == {"lines": [], "nextToken": None}


def test_logs_before_the_stream_exists_are_an_empty_page(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, _ = started_run(api, agent_id, platform)

    assert api("GET", f"/runs/{run_id}/logs").body == {"lines": [], "nextToken": None}


def test_logs_are_read_page_by_page_from_the_start(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = started_run(api, agent_id, platform)
    write_lines(platform, task_arn, 5)

    first = api("GET", f"/runs/{run_id}/logs", query={"limit": "3"})
    assert [line["message"] for line in first.body["lines"]] == ["line 0", "line 1", "line 2"]
    assert first.body["lines"][0]["timestamp"] == timeutil.iso(
        datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)
    )
    assert first.body["nextToken"]

    second = api(
        "GET", f"/runs/{run_id}/logs", query={"limit": "3", "nextToken": first.body["nextToken"]}
    )
    assert [line["message"] for line in second.body["lines"]] == ["line 3", "line 4"]


def test_logs_next_token_is_null_when_it_does_not_advance(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = started_run(api, agent_id, platform)
    write_lines(platform, task_arn, 2)
    token = api("GET", f"/runs/{run_id}/logs").body["nextToken"]

    end = api("GET", f"/runs/{run_id}/logs", query={"nextToken": token})

    assert end.body == {"lines": [], "nextToken": None}


def test_lines_written_later_are_read_with_the_last_token(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = started_run(api, agent_id, platform)
    write_lines(platform, task_arn, 2)
    token = api("GET", f"/runs/{run_id}/logs").body["nextToken"]
    write_lines(platform, task_arn, 2, start=2)

    later = api("GET", f"/runs/{run_id}/logs", query={"nextToken": token})

    assert [line["message"] for line in later.body["lines"]] == ["line 2", "line 3"]


def test_logs_refuse_a_token_cloudwatch_rejects(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id, task_arn = started_run(api, agent_id, platform)
    write_lines(platform, task_arn, 1)

    answer = api("GET", f"/runs/{run_id}/logs", query={"nextToken": "garbage"})

    assert answer.status == 400
    assert answer.error_code == "INVALID_NEXT_TOKEN"


def test_logs_refuse_an_out_of_range_limit(api: ApiCall, agent_id: str, platform: Platform) -> None:
    run_id, _ = started_run(api, agent_id, platform)

    assert api("GET", f"/runs/{run_id}/logs", query={"limit": "5000"}).status == 400
