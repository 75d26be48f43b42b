"""The sweeper: the backstop that stops test tasks past the time limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from botocore.stub import Stubber

from agent_builder import timeutil, wiring
from agent_builder.services.sweeper import Sweeper
from handlers import sweeper as sweeper_handler
from tests.runtime.support import ApiCall, Platform, lambda_context


def sweeper_at(minutes_from_now: float) -> Sweeper:
    later = timeutil.utcnow() + timedelta(minutes=minutes_from_now)
    return Sweeper(wiring._cluster_tasks(), max_test_minutes=5, clock=lambda: later)


REASON = "agent-builder: sweeper stopped the task past the time limit of 5 minutes"


def task(platform: Platform, name: str, age_minutes: float) -> dict[str, Any]:
    arn = f"{platform.cluster_arn.replace(':cluster/', ':task/')}/{name}"
    return {
        "taskArn": arn,
        "createdAt": timeutil.utcnow() - timedelta(minutes=age_minutes),
        "startedBy": name,
    }


# moto's DescribeTasks has no createdAt, which the sweeper goes by: ECS is stubbed here.
def test_sweeper_stops_tasks_past_the_time_limit_and_names_itself(platform: Platform) -> None:
    old, young = task(platform, "old", 5.5), task(platform, "young", 4)
    cluster = platform.cluster_arn
    with Stubber(platform.client("ecs")) as stubber:
        stubber.add_response(
            "list_tasks",
            {"taskArns": [old["taskArn"], young["taskArn"]]},
            {"cluster": cluster, "desiredStatus": "RUNNING"},
        )
        stubber.add_response(
            "describe_tasks",
            {"tasks": [old, young]},
            {"cluster": cluster, "tasks": [old["taskArn"], young["taskArn"]]},
        )
        stubber.add_response(
            "stop_task", {}, {"cluster": cluster, "task": old["taskArn"], "reason": REASON}
        )

        report = sweeper_at(0).sweep()

        stubber.assert_no_pending_responses()
    assert report.checked == 2
    assert report.stopped == [old["taskArn"]]


def test_sweeper_pages_through_every_running_task(platform: Platform) -> None:
    tasks = [task(platform, f"t{i}", 10) for i in range(3)]
    arns = [t["taskArn"] for t in tasks]
    cluster = platform.cluster_arn
    with Stubber(platform.client("ecs")) as stubber:
        stubber.add_response("list_tasks", {"taskArns": arns[:2], "nextToken": "page2"})
        stubber.add_response(
            "describe_tasks", {"tasks": tasks[:2]}, {"cluster": cluster, "tasks": arns[:2]}
        )
        for arn in arns[:2]:
            stubber.add_response(
                "stop_task", {}, {"cluster": cluster, "task": arn, "reason": REASON}
            )
        stubber.add_response(
            "list_tasks",
            {"taskArns": arns[2:]},
            {"cluster": cluster, "desiredStatus": "RUNNING", "nextToken": "page2"},
        )
        stubber.add_response(
            "describe_tasks", {"tasks": tasks[2:]}, {"cluster": cluster, "tasks": arns[2:]}
        )
        stubber.add_response(
            "stop_task", {}, {"cluster": cluster, "task": arns[2], "reason": REASON}
        )

        report = sweeper_at(0).sweep()

        stubber.assert_no_pending_responses()
    assert report.stopped == arns


def test_one_task_that_cannot_be_stopped_does_not_shield_the_others(platform: Platform) -> None:
    tasks = [task(platform, f"t{i}", 10) for i in range(2)]
    arns = [t["taskArn"] for t in tasks]
    with Stubber(platform.client("ecs")) as stubber:
        stubber.add_response("list_tasks", {"taskArns": arns})
        stubber.add_response("describe_tasks", {"tasks": tasks})
        stubber.add_client_error("stop_task", "ServerException", http_status_code=500)
        stubber.add_response("stop_task", {})

        report = sweeper_at(0).sweep()

    assert report.failed == arns[:1] and report.stopped == arns[1:]


def test_sweeper_handler_leaves_fresh_tasks_running(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    assert api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).status == 202

    result = sweeper_handler.handler(
        {"id": "evt-1", "detail-type": "Scheduled Event"}, lambda_context()
    )

    assert result == {"checked": 1, "stopped": [], "failed": []}
    assert len(platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]) == 1
