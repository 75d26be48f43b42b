"""Audit records of agent create/delete and platform launches (tests and deployments).

Each state change writes exactly one record in the same transaction as the change; a
refusal by a limit writes one `launch.refused` record and charges nothing; a launch that
fails after the charge adds `launch.failed` to its refund transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from agent_builder import clients, timeutil
from tests.runtime.support import (
    AGENT,
    BUCKET,
    LAUNCHES_PER_MINUTE,
    PLATFORM_ACCOUNT,
    REGION,
    TABLES,
    TESTS_PER_MONTH,
    USER,
    ApiCall,
    Platform,
    audit_records,
)

Calls = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def dynamodb_calls(platform: Platform) -> Iterator[Calls]:
    """The platform's DynamoDB requests (operation, parameters), from now on."""
    calls: Calls = []
    events = clients.client("dynamodb").meta.events

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params))

    events.register("provide-client-params.dynamodb.*", hook, unique_id="test-audit-calls")
    yield calls
    events.unregister("provide-client-params.dynamodb.*", hook, unique_id="test-audit-calls")


def launch(api: ApiCall, agent_id: str, *, key: str | None = None, text: str = "Hello") -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api("POST", f"/agents/{agent_id}/tests", body={"input": text}, headers=headers)


def audit_puts(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        item["Put"]["Item"]
        for item in items
        if "Put" in item and item["Put"]["TableName"] == TABLES["AUDIT_TABLE"]
    ]


def assert_well_formed(record: dict[str, Any]) -> None:
    assert record["scope"] == f"user#{record['userId']}"
    at = timeutil.parse_iso(record["at"])
    assert record["eventId"].startswith(f"{record['at']}#")
    assert record["expiresAt"] == timeutil.epoch(at + timedelta(days=400))


def no_secret_in(record: dict[str, Any], *texts: str) -> bool:
    values = " ".join(str(value) for value in record.values())
    return not any(text in values for text in texts)


# ---- agents -------------------------------------------------------------------------------


def test_agent_create_writes_one_record_in_the_same_transaction(
    api: ApiCall, platform: Platform, dynamodb_calls: Calls
) -> None:
    agent_id = api("POST", "/agents", body=AGENT).body["agentId"]

    [record] = audit_records(platform)
    assert record["action"] == "agent.create"
    assert record["result"] == "success"
    assert record["userId"] == USER and record["agentId"] == agent_id
    assert "accountId" not in record  # an agent lives in no AWS account
    assert_well_formed(record)
    assert no_secret_in(record, AGENT["instructions"], AGENT["name"])
    [transaction] = [params for name, params in dynamodb_calls if name == "TransactWriteItems"]
    assert [item["agentId"]["S"] for item in audit_puts(transaction["TransactItems"])] == [agent_id]
    assert "PutItem" not in [name for name, _ in dynamodb_calls]


def test_agent_delete_writes_one_record(api: ApiCall, agent_id: str, platform: Platform) -> None:
    assert api("DELETE", f"/agents/{agent_id}").status == 204

    [record] = audit_records(platform, "agent.delete")
    assert record["agentId"] == agent_id and record["result"] == "success"
    assert_well_formed(record)


def test_deleting_a_missing_agent_writes_no_record(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    api("DELETE", f"/agents/{agent_id}")

    assert api("DELETE", f"/agents/{agent_id}").status == 404

    assert len(audit_records(platform, "agent.delete")) == 1


def test_an_agent_write_that_fails_leaves_neither_agent_nor_record(
    api: ApiCall, platform: Platform
) -> None:
    with Stubber(clients.client("dynamodb")) as stubber:
        profile = {"userId": {"S": USER}, "tier": {"S": "freemium"}}
        stubber.add_response("update_item", {"Attributes": profile})
        stubber.add_client_error(
            "transact_write_items", "InternalServerError", http_status_code=500
        )
        answer = api("POST", "/agents", body=AGENT)

    assert answer.status == 500
    assert platform.table_items("AGENTS_TABLE") == []
    assert audit_records(platform) == []


# ---- launches -----------------------------------------------------------------------------


def test_test_launch_writes_one_record_inside_its_charge_transaction(
    api: ApiCall, agent_id: str, platform: Platform, dynamodb_calls: Calls
) -> None:
    answer = launch(api, agent_id, text="a secret question")
    calls = list(dynamodb_calls)

    run_id = answer.body["runId"]
    [record] = audit_records(platform, "test.launch")
    assert record["result"] == "success"
    assert record["runId"] == run_id and record["agentId"] == agent_id
    assert record["accountId"] == PLATFORM_ACCOUNT and record["region"] == REGION
    assert record["kind"] == "test" and record["target"] == "platform"
    assert_well_formed(record)
    assert no_secret_in(record, "a secret question", AGENT["instructions"])
    # No extra call: the record is one more item of the charge's TransactWriteItems.
    assert [name for name, _ in calls] == ["BatchGetItem", "TransactWriteItems"]
    items = calls[1][1]["TransactItems"]
    assert [put["runId"]["S"] for put in audit_puts(items)] == [run_id]
    assert {TABLES["RUNS_TABLE"], TABLES["USAGE_TABLE"]} <= {
        next(iter(item.values()))["TableName"] for item in items
    }


def test_freemium_deployment_is_audited_as_a_deployment_launch(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    run_id = api("POST", f"/agents/{agent_id}/deployments", body={}).body["runId"]

    [record] = audit_records(platform, "deployment.launch")
    assert record["runId"] == run_id and record["kind"] == "deployment"
    assert record["accountId"] == PLATFORM_ACCOUNT
    assert audit_records(platform, "test.launch") == []


def test_idempotent_replay_writes_no_second_record(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    first = launch(api, agent_id, key="same")

    assert launch(api, agent_id, key="same").body["runId"] == first.body["runId"]

    assert len(audit_records(platform, "test.launch")) == 1
    assert len(audit_records(platform)) == 2  # agent.create, test.launch


def test_quota_refusal_writes_a_refused_record_and_charges_nothing(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    for _ in range(TESTS_PER_MONTH):
        assert launch(api, agent_id).status == 202
    runs_before = platform.table_items("RUNS_TABLE")

    answer = launch(api, agent_id)

    assert answer.error_code == "QUOTA_EXCEEDED"
    [record] = audit_records(platform, "launch.refused")
    assert record["result"] == "refused" and record["code"] == "QUOTA_EXCEEDED"
    assert record["agentId"] == agent_id and record["kind"] == "test"
    assert record["accountId"] == PLATFORM_ACCOUNT
    assert "runId" not in record  # no run was stored
    assert "quota resets" in record["reason"]
    assert_well_formed(record)
    assert platform.tests_used() == TESTS_PER_MONTH
    assert platform.table_items("RUNS_TABLE") == runs_before
    assert len(audit_records(platform, "test.launch")) == TESTS_PER_MONTH


def test_rate_limit_refusal_writes_a_refused_record(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    window = timeutil.minute_window(timeutil.utcnow())
    platform.client("dynamodb").put_item(
        TableName=TABLES["USAGE_TABLE"],
        Item={
            "userId": {"S": USER},
            "period": {"S": f"launches#{window}"},
            "launches": {"N": str(LAUNCHES_PER_MINUTE)},
        },
    )

    answer = launch(api, agent_id)

    if timeutil.minute_window(timeutil.utcnow()) != window:
        pytest.skip("the minute turned during the test")
    assert answer.error_code == "RATE_LIMITED"
    [record] = audit_records(platform, "launch.refused")
    assert record["code"] == "RATE_LIMITED" and record["result"] == "refused"
    assert audit_records(platform, "test.launch") == []


def test_a_lost_refusal_record_does_not_hide_the_refusal(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    for _ in range(TESTS_PER_MONTH):
        launch(api, agent_id)
    events = clients.client("dynamodb").meta.events

    def fail_put(params: dict[str, Any], **_: Any) -> None:
        raise RuntimeError("audit table unavailable")

    events.register("before-call.dynamodb.PutItem", fail_put, unique_id="test-audit-put")
    try:
        answer = launch(api, agent_id)
    finally:
        events.unregister("before-call.dynamodb.PutItem", fail_put, unique_id="test-audit-put")

    assert answer.status == 429
    assert audit_records(platform, "launch.refused") == []


def run_task_failure() -> Stubber:
    stubber = Stubber(clients.client("ecs"))
    stubber.add_response(
        "run_task", {"tasks": [], "failures": [{"arn": "x", "reason": "Capacity is unavailable"}]}
    )
    return stubber


def test_failed_launch_puts_its_failed_record_in_the_refund_transaction(
    api: ApiCall, agent_id: str, platform: Platform, dynamodb_calls: Calls
) -> None:
    with run_task_failure():
        answer = launch(api, agent_id)

    assert answer.error_code == "LAUNCH_FAILED"
    run_id = answer_run_id(platform)
    transactions = [
        p["TransactItems"] for name, p in dynamodb_calls if name == "TransactWriteItems"
    ]
    assert len(transactions) == 2  # the charge, then the refund
    refund = transactions[1]
    assert any(
        "Update" in item and item["Update"]["TableName"] == TABLES["USAGE_TABLE"] for item in refund
    )
    [failed] = audit_puts(refund)
    assert failed["action"]["S"] == "launch.failed" and failed["runId"]["S"] == run_id
    assert "PutItem" not in [name for name, _ in dynamodb_calls]
    charged, record = audit_records(platform, None)[1:]  # after agent.create
    assert (charged["action"], record["action"]) == ("test.launch", "launch.failed")
    assert record["result"] == "failure" and record["code"] == "LAUNCH_FAILED"
    assert record["refunded"] is True
    assert "Capacity is unavailable" in record["reason"]
    assert record["accountId"] == PLATFORM_ACCOUNT and record["runId"] == run_id
    assert_well_formed(record)
    assert platform.tests_used() == 0


def answer_run_id(platform: Platform) -> str:
    [run] = platform.table_items("RUNS_TABLE")
    return str(run["runId"])


def test_failed_launch_replayed_writes_no_further_record(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    platform.client("s3").delete_bucket(Bucket=BUCKET)
    launch(api, agent_id, key="k")
    before = audit_records(platform)

    assert launch(api, agent_id, key="k").error_code == "LAUNCH_FAILED"

    assert audit_records(platform) == before
    assert [r["action"] for r in before] == ["agent.create", "test.launch", "launch.failed"]


def test_run_repaired_on_read_is_audited_as_a_failed_launch(
    api: ApiCall, platform: Platform, set_pending_run: Callable[[], str]
) -> None:
    run_id = set_pending_run()

    api("GET", f"/runs/{run_id}")
    api("GET", f"/runs/{run_id}")

    [record] = audit_records(platform, "launch.failed")
    assert record["runId"] == run_id and record["code"] == "LAUNCH_FAILED"
    assert "never started" in record["reason"] and record["refunded"] is True


@pytest.fixture
def set_pending_run(platform: Platform) -> Callable[[], str]:
    """A launch whose function died between the charge and RunTask: PENDING, no task."""

    def create() -> str:
        created = timeutil.utcnow() - timedelta(minutes=10)
        run_id = "11111111-1111-4111-8111-111111111111"
        period = f"tests#{timeutil.month(created)}"
        dynamodb = platform.client("dynamodb")
        dynamodb.put_item(
            TableName=TABLES["RUNS_TABLE"],
            Item={
                "runId": {"S": run_id},
                "userId": {"S": USER},
                "agentId": {"S": "a"},
                "kind": {"S": "test"},
                "target": {"S": "platform"},
                "accountId": {"S": PLATFORM_ACCOUNT},
                "region": {"S": REGION},
                "status": {"S": "PENDING"},
                "statusRank": {"N": "0"},
                "createdAt": {"S": timeutil.iso(created)},
                "period": {"S": period},
            },
        )
        dynamodb.put_item(
            TableName=TABLES["USAGE_TABLE"],
            Item={"userId": {"S": USER}, "period": {"S": period}, "testsUsed": {"N": "1"}},
        )
        return run_id

    return create
