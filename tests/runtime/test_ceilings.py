"""The owner's ceilings: platform test tasks at once, platform free tests a month, agents
per user. Each is a condition inside the transaction that already charges (or creates),
so a refusal charges nothing and no read comes first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from agent_builder import timeutil
from tests.runtime.support import (
    AGENT,
    MAX_AGENTS_PER_USER,
    MAX_RUNNING_TESTS,
    OTHER_USER,
    PLATFORM_TESTS_PER_MONTH,
    TESTS_PER_MONTH,
    USER,
    ApiCall,
    Platform,
    lambda_context,
    put_run_without_task,
    task_event,
)

THIRD_USER = "3c9a7e0e-1b2d-4f5a-9e8d-7c6b5a4f3e2d"
FINISHED = {
    "lastStatus": "STOPPED",
    "startedAt": "2025-01-15T12:00:30.000Z",
    "stoppedAt": "2025-01-15T12:02:00.500Z",
    "stopCode": "EssentialContainerExited",
    "stoppedReason": "Essential container in task exited",
    "containers": [{"name": "runner", "lastStatus": "STOPPED", "exitCode": 0}],
}


def usage(platform: Platform, period: str, attribute: str) -> int:
    item = (
        platform.client("dynamodb")
        .get_item(
            TableName=platform.env["USAGE_TABLE"],
            Key={"userId": {"S": "#platform"}, "period": {"S": period}},
        )
        .get("Item", {})
    )
    return int(item.get(attribute, {}).get("N", "0"))


def running(platform: Platform) -> int:
    return usage(platform, "running", "running")


def platform_tests(platform: Platform) -> int:
    return usage(platform, f"tests#{timeutil.month(timeutil.utcnow())}", "testsUsed")


def new_agent(api: ApiCall, user: str) -> str:
    answer = api("POST", "/agents", body=AGENT, user=user)
    assert answer.status == 201, answer.body
    return str(answer.body["agentId"])


def launch(api: ApiCall, agent_id: str, user: str = USER) -> Any:
    return api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}, user=user)


def task_of(platform: Platform, run_id: str) -> str:
    for arn in platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]:
        [task] = platform.client("ecs").describe_tasks(cluster=platform.cluster_arn, tasks=[arn])[
            "tasks"
        ]
        if task.get("startedBy") == run_id:
            return str(arn)
    raise AssertionError(f"no task for run {run_id}")


def deliver(platform: Platform, run_id: str, **detail: Any) -> str:
    from handlers import task_events

    event = task_event(platform, run_id, task_of(platform, run_id), **detail)
    return str(
        task_events.handler(event, lambda_context(function_name="agent-builder-taskevents"))[
            "result"
        ]
    )


# ---- platform test tasks at once --------------------------------------------------------


def test_a_launch_over_the_running_cap_answers_503_and_charges_nothing(
    api: ApiCall, platform: Platform
) -> None:
    mine, theirs = new_agent(api, USER), new_agent(api, OTHER_USER)
    for _ in range(TESTS_PER_MONTH):
        assert launch(api, mine).status == 202
    for _ in range(MAX_RUNNING_TESTS - TESTS_PER_MONTH):
        assert launch(api, theirs, OTHER_USER).status == 202
    assert running(platform) == MAX_RUNNING_TESTS

    refused = launch(api, theirs, OTHER_USER)

    assert refused.status == 503
    assert refused.error_code == "CAPACITY_EXHAUSTED"
    assert int(refused.headers["retry-after"]) > 0
    assert platform.tests_used(OTHER_USER) == MAX_RUNNING_TESTS - TESTS_PER_MONTH
    assert running(platform) == MAX_RUNNING_TESTS
    runs = platform.table_items("RUNS_TABLE")
    assert len(runs) == MAX_RUNNING_TESTS  # the refused launch stored no run


def test_a_finished_task_gives_its_slot_back_once(api: ApiCall, platform: Platform) -> None:
    agent = new_agent(api, USER)
    run_id = launch(api, agent).body["runId"]
    assert running(platform) == 1

    assert deliver(platform, run_id, **FINISHED) == "applied"
    assert running(platform) == 0
    # A duplicate STOPPED event, as EventBridge may deliver, gives nothing back twice.
    assert deliver(platform, run_id, **FINISHED) == "stale"
    assert running(platform) == 0
    assert platform.tests_used() == 1  # it ran: the test stays spent


@pytest.mark.parametrize(
    ("ending", "detail", "refunded"),
    [
        ("exit 0", FINISHED, False),
        ("exit 1", {**FINISHED, "containers": [{"name": "runner", "exitCode": 1}]}, False),
        (
            "time limit",
            {
                **FINISHED,
                "stopCode": "UserInitiated",
                "stoppedReason": "agent-builder: time limit of 5 minutes reached",
                "containers": [{"name": "runner", "exitCode": 143}],
            },
            False,
        ),
        (
            "sweeper",
            {
                **FINISHED,
                "stopCode": "UserInitiated",
                "stoppedReason": "agent-builder: sweeper stopped the task past the time limit",
                "containers": [{"name": "runner", "exitCode": 143}],
            },
            False,
        ),
        (
            "never started",
            {"lastStatus": "STOPPED", "stopCode": "TaskFailedToStart", "stoppedReason": "x"},
            True,
        ),
        (
            "Spot interruption",
            {
                **FINISHED,
                "stopCode": "SpotInterruption",
                "stoppedReason": "Your Spot Task was interrupted.",
            },
            True,
        ),
    ],
)
def test_every_kind_of_task_ending_returns_the_running_count_to_zero(
    api: ApiCall, platform: Platform, ending: str, detail: dict[str, Any], refunded: bool
) -> None:
    agent = new_agent(api, USER)
    run_id = launch(api, agent).body["runId"]
    assert running(platform) == 1 and platform_tests(platform) == 1

    deliver(platform, run_id, **detail)

    assert running(platform) == 0, ending
    assert platform.tests_used() == (0 if refunded else 1), ending
    assert platform_tests(platform) == (0 if refunded else 1), ending


def test_a_failed_launch_gives_back_its_slot_and_the_platforms_free_test(
    api: ApiCall, platform: Platform
) -> None:
    agent = new_agent(api, USER)
    with Stubber(platform.client("ecs")) as ecs:
        ecs.add_response("run_task", {"tasks": [], "failures": [{"arn": "x", "reason": "none"}]})
        assert launch(api, agent).error_code == "LAUNCH_FAILED"

    assert running(platform) == 0
    assert platform_tests(platform) == 0
    assert platform.tests_used() == 0


def test_a_run_that_never_got_a_task_gives_its_slot_back_when_repaired(
    api: ApiCall, platform: Platform
) -> None:
    # A launch whose function died between the charge and RunTask: PENDING, no task,
    # holding a slot and one of the platform's free tests (as charge() stored them).
    created = timeutil.utcnow() - timedelta(minutes=10)
    run_id = "11111111-1111-4111-8111-111111111111"
    period = f"tests#{timeutil.month(created)}"
    put_run_without_task(
        platform, run_id, created, holdsSlot={"BOOL": True}, platformPeriod={"S": period}
    )
    dynamodb = platform.client("dynamodb")
    for user, key, attribute in (
        (USER, period, "testsUsed"),
        ("#platform", period, "testsUsed"),
        ("#platform", "running", "running"),
    ):
        dynamodb.put_item(
            TableName=platform.env["USAGE_TABLE"],
            Item={"userId": {"S": user}, "period": {"S": key}, attribute: {"N": "1"}},
        )

    assert api("GET", f"/runs/{run_id}").body["status"] == "FAILED"

    assert running(platform) == 0
    assert usage(platform, period, "testsUsed") == 0
    assert platform.tests_used() == 0


def test_the_slot_is_taken_in_the_same_transaction_as_the_charge(
    api: ApiCall, platform: Platform
) -> None:
    agent = new_agent(api, USER)
    calls: list[dict[str, Any]] = []
    client = platform.client("dynamodb")

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", record)
    try:
        assert launch(api, agent).status == 202
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.TransactWriteItems", record)

    [charge] = calls
    updates = [i["Update"] for i in charge["TransactItems"] if "Update" in i]
    slot = next(u for u in updates if u["Key"].get("period") == {"S": "running"})
    assert slot["Key"]["userId"] == {"S": "#platform"}
    assert slot["ConditionExpression"] == "attribute_not_exists(running) OR running < :cap"
    assert slot["ExpressionAttributeValues"][":cap"] == {"N": str(MAX_RUNNING_TESTS)}
    month = next(
        u
        for u in updates
        if u["Key"]["userId"] == {"S": "#platform"} and u["Key"].get("period") != {"S": "running"}
    )
    assert month["ExpressionAttributeValues"][":cap"] == {"N": str(PLATFORM_TESTS_PER_MONTH)}


# ---- platform free tests a month ---------------------------------------------------------


def test_the_platforms_free_tests_a_month_have_a_ceiling(api: ApiCall, platform: Platform) -> None:
    users = [USER, OTHER_USER, THIRD_USER]
    agents = {user: new_agent(api, user) for user in users}
    launched = 0
    for user in users:
        while launched < PLATFORM_TESTS_PER_MONTH and platform.tests_used(user) < TESTS_PER_MONTH:
            run_id = launch(api, agents[user], user).body["runId"]
            deliver(platform, run_id, **FINISHED)  # free its slot: only the month counts
            launched += 1
    assert platform_tests(platform) == PLATFORM_TESTS_PER_MONTH

    refused = launch(api, agents[THIRD_USER], THIRD_USER)

    assert refused.status == 503
    assert refused.error_code == "FREE_TIER_PAUSED"
    assert int(refused.headers["retry-after"]) > 0
    assert platform.tests_used(THIRD_USER) == 0
    assert platform_tests(platform) == PLATFORM_TESTS_PER_MONTH


# ---- agents per user ---------------------------------------------------------------------


def test_agents_per_user_have_a_limit_and_deleting_one_makes_room(
    api: ApiCall, platform: Platform
) -> None:
    agents = [new_agent(api, USER) for _ in range(MAX_AGENTS_PER_USER)]

    refused = api("POST", "/agents", body=AGENT)

    assert refused.status == 409
    assert refused.error_code == "AGENT_LIMIT"
    assert str(MAX_AGENTS_PER_USER) in refused.body["error"]["message"]
    assert len(platform.table_items("AGENTS_TABLE")) == MAX_AGENTS_PER_USER
    assert new_agent(api, OTHER_USER)  # the limit is per user
    assert api("DELETE", f"/agents/{agents[0]}").status == 204
    assert api("POST", "/agents", body=AGENT).status == 201


def test_an_agent_made_before_the_count_existed_still_deletes(
    api: ApiCall, platform: Platform
) -> None:
    platform.client("dynamodb").put_item(
        TableName=platform.env["AGENTS_TABLE"],
        Item={
            "userId": {"S": USER},
            "agentId": {"S": "0b1f6a52-0d0e-4b8f-9a51-2f1f6a0c7e11"},
            "name": {"S": "old"},
            "model": {"S": AGENT["model"]},
            "instructions": {"S": "x"},
            "createdAt": {"S": "2025-01-01T00:00:00.000Z"},
        },
    )

    answer = api("DELETE", "/agents/0b1f6a52-0d0e-4b8f-9a51-2f1f6a0c7e11")

    assert answer.status == 204
    assert platform.table_items("AGENTS_TABLE") == []
