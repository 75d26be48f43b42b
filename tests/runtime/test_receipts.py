"""Receipts: a stopped platform run carries its tokens (from the runner's result.json),
its duration (ECS's times) and its estimated cost from the one price table; GET /me adds
up the month's; a Spot-interrupted run is refunded once and says so."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from agent_builder import pricing
from agent_builder.receipts import tokens
from tests.runtime.support import (
    AGENT,
    BUCKET,
    ApiCall,
    Platform,
    lambda_context,
    task_event,
)

STARTED, STOPPED_AT = "2025-01-15T12:00:30.000Z", "2025-01-15T12:02:00.500Z"
PULLED = "2025-01-15T12:00:10.000Z"
FINISHED = {
    "lastStatus": "STOPPED",
    "pullStartedAt": PULLED,
    "startedAt": STARTED,
    "stoppedAt": STOPPED_AT,
    "stopCode": "EssentialContainerExited",
    "stoppedReason": "Essential container in task exited",
    "containers": [{"name": "runner", "lastStatus": "STOPPED", "exitCode": 0}],
}
SPOT = {
    **FINISHED,
    "stopCode": "SpotInterruption",
    "stoppedReason": "Your Spot Task was interrupted.",
}
# tests/runtime/conftest.py's task: 256 CPU units, 512 MiB, ARM64, Spot.
SIZE = pricing.TaskSize(cpu_units=256, memory_mib=512, architecture="ARM64", spot=True)


def launch(api: ApiCall, agent_id: str) -> str:
    answer = api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"})
    assert answer.status == 202, answer.body
    return str(answer.body["runId"])


def runner_result(platform: Platform, run_id: str, body: Any) -> None:
    platform.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"runs/{run_id}/result.json",
        Body=body if isinstance(body, bytes) else json.dumps(body).encode(),
    )


def stop(platform: Platform, run_id: str, **detail: Any) -> str:
    from handlers import task_events

    ecs = platform.client("ecs")
    [arn] = [
        arn
        for arn in ecs.list_tasks(cluster=platform.cluster_arn)["taskArns"]
        if ecs.describe_tasks(cluster=platform.cluster_arn, tasks=[arn])["tasks"][0]["startedBy"]
        == run_id
    ]
    event = task_event(platform, run_id, arn, **detail)
    return str(task_events.handler(event, lambda_context("agent-builder-taskevents"))["result"])


def expected(input_tokens: int, output_tokens: int, billed_seconds: float) -> dict[str, float]:
    compute = round(pricing.compute_cost(SIZE, billed_seconds), 6)
    model = round(pricing.model_cost(AGENT["model"], input_tokens, output_tokens), 6)
    return {"compute": compute, "model": model, "total": round(compute + model, 6)}


def test_a_stopped_run_carries_its_receipt_priced_from_the_price_table(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = launch(api, agent_id)
    runner_result(
        platform,
        run_id,
        {
            "runId": run_id,
            "status": "SUCCEEDED",
            "usage": {"inputTokens": 1200, "outputTokens": 300},
        },
    )

    assert stop(platform, run_id, **FINISHED) == "applied"

    run = api("GET", f"/runs/{run_id}").body
    receipt = run["receipt"]
    assert receipt["inputTokens"] == 1200 and receipt["outputTokens"] == 300
    assert receipt["durationSeconds"] == 90.5  # startedAt -> stoppedAt
    # Compute as Fargate bills: from the image pull to the stop (110.5 s).
    assert receipt["estimatedCostUsd"] == pytest.approx(expected(1200, 300, 110.5), abs=1e-6)
    assert receipt["pricedAt"] == pricing.PRICED_AT
    assert run["refunded"] is None
    [listed] = api("GET", "/runs").body["runs"]
    assert listed["receipt"] == receipt


def test_me_adds_up_the_months_receipts(api: ApiCall, agent_id: str, platform: Platform) -> None:
    costs = []
    for used in ((100, 10), (50, 5)):
        run_id = launch(api, agent_id)
        runner_result(
            platform, run_id, {"usage": {"inputTokens": used[0], "outputTokens": used[1]}}
        )
        stop(platform, run_id, **FINISHED)
        costs.append(api("GET", f"/runs/{run_id}").body["receipt"]["estimatedCostUsd"]["total"])

    usage = api("GET", "/me").body["usage"]

    assert usage["inputTokens"] == 150 and usage["outputTokens"] == 15
    assert Decimal(str(usage["estimatedCostUsd"])) == sum(Decimal(str(c)) for c in costs)
    assert usage["testsUsed"] == 2


def test_a_duplicate_stop_event_adds_nothing_twice(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = launch(api, agent_id)
    runner_result(platform, run_id, {"usage": {"inputTokens": 7, "outputTokens": 3}})
    assert stop(platform, run_id, **FINISHED) == "applied"

    assert stop(platform, run_id, **FINISHED) == "stale"

    assert api("GET", "/me").body["usage"]["inputTokens"] == 7


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("no result", None),
        ("not JSON", b"{nope"),
        ("lying types", {"usage": {"inputTokens": "9999", "outputTokens": -5}}),
        ("booleans", {"usage": {"inputTokens": True, "outputTokens": None}}),
    ],
)
def test_without_believable_usage_the_receipt_prices_compute_only(
    api: ApiCall, agent_id: str, platform: Platform, case: str, body: Any
) -> None:
    run_id = launch(api, agent_id)
    if body is not None:
        runner_result(platform, run_id, body)

    stop(platform, run_id, **FINISHED)

    receipt = api("GET", f"/runs/{run_id}").body["receipt"]
    assert (receipt["inputTokens"], receipt["outputTokens"]) == (0, 0), case
    assert receipt["estimatedCostUsd"]["model"] == 0
    assert receipt["estimatedCostUsd"]["compute"] > 0


def test_a_task_that_never_started_costs_its_user_nothing(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = launch(api, agent_id)

    assert stop(platform, run_id, lastStatus="STOPPED", stopCode="TaskFailedToStart") == "refunded"

    run = api("GET", f"/runs/{run_id}").body
    assert run["refunded"] is True
    assert run["receipt"]["durationSeconds"] == 0
    assert run["receipt"]["estimatedCostUsd"]["total"] == 0
    assert platform.tests_used() == 0


def test_a_spot_interruption_is_refunded_once_and_says_so(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = launch(api, agent_id)
    runner_result(platform, run_id, {"usage": {"inputTokens": 40, "outputTokens": 4}})
    assert platform.tests_used() == 1

    assert stop(platform, run_id, **SPOT) == "refunded"
    assert stop(platform, run_id, **SPOT) == "stale"  # EventBridge delivers twice

    run = api("GET", f"/runs/{run_id}").body
    assert run["refunded"] is True
    assert run["stopReason"] == "Your Spot Task was interrupted."
    assert run["receipt"]["inputTokens"] == 40  # what it cost the owner all the same
    me = api("GET", "/me").body["usage"]
    assert me["testsUsed"] == 0 and me["inputTokens"] == 40


def test_the_task_event_reads_only_its_runs_result() -> None:
    assert tokens({"usage": {"inputTokens": 5, "outputTokens": 6}}) == (5, 6)
    assert tokens({"usage": "lots"}) == (0, 0)
    assert tokens(None) == (0, 0)


def test_every_price_names_its_source_and_the_table_its_date() -> None:
    assert pricing.PRICED_AT.count("-") == 2
    prices = [price for size in pricing.FARGATE.values() for price in size.values()] + [
        pricing.SPOT_FACTOR,
        pricing.PUBLIC_IPV4_HOUR,
    ]
    assert all(price.source.startswith("https://aws.amazon.com/") for price in prices)
    assert all(
        model.source.startswith("https://aws.amazon.com/") for model in pricing.MODELS.values()
    )
