"""The budget's kill switch: AWS Budgets' ACTUAL alert at 100 % pauses the free tier
(platform tests answer 503 FREE_TIER_PAUSED) inside the charge transaction that already
exists; only a message from our budget topic about our budget can do it; the owner's
resume and the month's turn lift it; both are audited and alarmed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from agent_builder import wiring
from agent_builder.services.free_tier import parse_budget_message
from tests.runtime.support import (
    AGENT,
    PREFIX,
    REGION,
    USER,
    ApiCall,
    Customer,
    Platform,
    audit_records,
    lambda_context,
    paste_connect,
)

BUDGET = f"{PREFIX}-monthly"


def budget_message(
    *, name: str = BUDGET, kind: str = "ACTUAL", threshold: str = "50.00", budgeted: str = "50.00"
) -> str:
    """AWS Budgets' plain-text SNS notification, as it reads."""
    return (
        "AWS Budget Notification December 02, 2026\n"
        "AWS Account 123456789012\n\n"
        "Dear AWS Customer,\n\n"
        f"You requested that we alert you when the {kind} Cost associated with your {name} "
        f"budget is greater than ${threshold} for the current month. The {kind} Cost "
        f"associated with this budget is $51.20. You can find additional details below and "
        "by accessing the AWS Budgets dashboard [1].\n\n"
        f"Budget Name: {name}\n"
        "Budget Type: Cost\n"
        f"Budgeted Amount: ${budgeted}\n"
        f"Alert Type: {kind}\n"
        f"Alert Threshold: > ${threshold}\n"
        f"{kind} Amount: $51.20\n\n"
        "[1] https://console.aws.amazon.com/billing/home#/budgets\n"
    )


class Switch:
    def __init__(self, platform: Platform, topic: str, alarms_queue: str) -> None:
        self.platform = platform
        self.topic = topic
        self._queue = alarms_queue

    def notify(self, message: str | None = None, **record: Any) -> str:
        from handlers import budget

        sns = {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": self.topic,
            "Subject": f"AWS Budgets: {BUDGET} has exceeded your alert threshold",
            "Message": budget_message() if message is None else message,
            **record.pop("Sns", {}),
        }
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": f"{self.topic}:0b9e6c1e-7d1f-4b8e-9a55-1d0c2e3f4a5b",
                    "Sns": sns,
                    **record,
                }
            ]
        }
        results = budget.handler(event, lambda_context("agent-builder-budgetswitch"))["results"]
        return str(results[0])

    def alarms(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        messages = sqs.receive_message(QueueUrl=self._queue, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def switch(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Switch:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    for topic in sns.list_topics()["Topics"]:
        sns.delete_topic(TopicArn=topic["TopicArn"])
    budget_topic = sns.create_topic(Name=f"{PREFIX}-budget-kill-switch")["TopicArn"]
    alarm_topic = sns.create_topic(Name=f"{PREFIX}-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"alarms-{len(sqs.list_queues().get('QueueUrls', []))}")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=alarm_topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    for name, value in {
        "BUDGET_TOPIC_ARN": budget_topic,
        "BUDGET_NAME": BUDGET,
        "ALARM_TOPIC_ARN": alarm_topic,
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset(keep_clients=True)
    return Switch(platform, budget_topic, queue["QueueUrl"])


def launch(api: ApiCall, agent_id: str) -> Any:
    return api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"})


def test_the_budgets_message_is_read_for_name_type_and_share_of_the_budget() -> None:
    alert = parse_budget_message(budget_message(threshold="1,250.00", budgeted="1,000.00"))
    assert alert is not None
    assert alert.budget_name == BUDGET
    assert alert.alert_type == "ACTUAL"
    assert alert.percent == 125
    assert parse_budget_message("hello") is None


def test_a_budget_alert_pauses_platform_tests_with_503_and_charges_nothing(
    api: ApiCall, agent_id: str, switch: Switch, platform: Platform
) -> None:
    assert switch.notify() == "paused"

    refused = launch(api, agent_id)

    assert refused.status == 503
    assert refused.error_code == "FREE_TIER_PAUSED"
    assert "budget" in refused.body["error"]["message"]
    assert int(refused.headers["retry-after"]) > 0
    assert platform.tests_used(USER) == 0
    assert platform.table_items("RUNS_TABLE") == []


def test_a_pause_is_audited_and_alarmed_once(switch: Switch, platform: Platform) -> None:
    assert switch.notify() == "paused"
    assert switch.notify() == "already paused"  # SNS delivers at least once

    [paused] = audit_records(platform, "freetier.pause")
    assert paused["scope"] == "user##platform"
    assert paused["result"] == "success"
    assert paused["by"] == "budgets.amazonaws.com"
    assert "passed 100 %" in paused["reason"]
    [alarm] = switch.alarms()
    assert "free tier PAUSED" in alarm["Subject"]
    assert "make resume-free-tier" in alarm["Message"]


@pytest.mark.parametrize(
    ("case", "message", "record"),
    [
        ("another topic", None, {"Sns": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:other"}}),
        (
            "another subscription",
            None,
            {"EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:other:1"},
        ),
        ("not from SNS", None, {"EventSource": "aws:sqs"}),
        ("another budget", budget_message(name="someone-else"), {}),
        ("a forecast", budget_message(kind="FORECASTED"), {}),
        ("the 80 % alert", budget_message(threshold="40.00"), {}),
        ("not a budget message", "Free tier off please", {}),
    ],
)
def test_a_message_that_cannot_be_believed_changes_nothing_and_is_audited(
    api: ApiCall,
    agent_id: str,
    switch: Switch,
    platform: Platform,
    case: str,
    message: str | None,
    record: dict[str, Any],
) -> None:
    assert switch.notify(message, **record) == "refused", case

    assert launch(api, agent_id).status == 202
    [refusal] = audit_records(platform, "budget.notification")
    assert refusal["result"] == "refused"
    assert audit_records(platform, "freetier.pause") == []
    assert switch.alarms() == []


def test_personal_deployments_are_not_paused(
    api: ApiCall, agent_id: str, switch: Switch, customer: Customer
) -> None:
    assert paste_connect(api, customer).status == 200
    assert switch.notify() == "paused"

    deployed = api("POST", f"/agents/{agent_id}/deployments", body={"input": "go"})

    assert deployed.status == 202, deployed.body
    assert deployed.body["target"] == "customer"
    assert launch(api, agent_id).error_code == "FREE_TIER_PAUSED"  # its tests still are


def test_the_owners_resume_lifts_the_pause_audited_and_alarmed(
    api: ApiCall, agent_id: str, switch: Switch, platform: Platform
) -> None:
    owner = "arn:aws:iam::123456789012:user/owner"
    assert switch.notify() == "paused"
    resumer = wiring.budget_services()
    assert resumer.status()["paused"] is True

    assert resumer.resume(by=owner) == "resumed"
    assert resumer.resume(by=owner) == "not paused"

    assert launch(api, agent_id).status == 202
    assert resumer.status()["paused"] is False
    [resumed] = audit_records(platform, "freetier.resume")
    assert resumed["by"] == owner and resumed["scope"] == "user##platform"
    subjects = [alarm["Subject"] for alarm in switch.alarms()]
    assert any("RESUMED" in subject for subject in subjects)


def test_the_pause_is_the_months_so_the_next_month_is_not_paused(
    switch: Switch, platform: Platform
) -> None:
    from agent_builder.repositories.ledger import Limits

    services = wiring.budget_services()
    december = datetime(2026, 12, 20, tzinfo=UTC)
    services._clock = lambda: december  # type: ignore[method-assign]
    assert switch.notify() != "refused"
    ledger = wiring.api_services().profiles._ledger
    limits = Limits(tests_per_month=5, launches_per_minute=100, max_running_tests=10)

    def charge(run_id: str, now: datetime) -> None:
        run = {
            "runId": run_id,
            "userId": USER,
            "agentId": "a",
            "kind": "test",
            "target": "platform",
            "status": "PENDING",
            "createdAt": now.isoformat().replace("+00:00", "Z"),
        }
        ledger.charge(run, email=None, now=now, limits=limits)

    from agent_builder.errors import FreeTierPaused

    with pytest.raises(FreeTierPaused):
        charge("r-dec", december)
    charge("r-jan", datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))  # no job: a new month's item


def test_the_pause_is_one_condition_in_the_existing_charge_transaction(
    api: ApiCall, agent_id: str, switch: Switch, platform: Platform
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    client = platform.client("dynamodb")

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params))

    client.meta.events.register("provide-client-params.dynamodb.*", record)
    try:
        assert launch(api, agent_id).status == 202
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.*", record)
    operations = [name for name, _ in calls]
    # The agent and profile in one read, the charge: no read of the pause.
    assert operations == ["BatchGetItem", "TransactWriteItems"]
    month = next(
        item["Update"]
        for item in calls[1][1]["TransactItems"]
        if "Update" in item
        and item["Update"]["Key"]["userId"] == {"S": "#platform"}
        and item["Update"]["Key"]["period"]["S"].startswith("tests#")
    )
    assert month["ConditionExpression"].startswith("attribute_not_exists(pausedAt)")


def test_agent_definitions_are_untouched_by_a_pause(
    api: ApiCall, switch: Switch, platform: Platform
) -> None:
    assert switch.notify() == "paused"
    assert api("POST", "/agents", body=AGENT).status == 201


def test_an_alert_published_last_month_does_not_pause_the_new_month(switch: Switch) -> None:
    """SNS's Timestamp says which month's spend the alert is about: one delivered after
    midnight UTC of the 1st is about a month that has ended."""
    services = wiring.budget_services()
    services._clock = lambda: datetime(2026, 12, 1, 0, 3, tzinfo=UTC)  # type: ignore[method-assign]
    assert switch.notify(Sns={"Timestamp": "2026-11-30T23:58:41.000Z"}) == "refused"
    assert services.status()["paused"] is False
    # The same alert published this month pauses it.
    assert switch.notify(Sns={"Timestamp": "2026-12-01T00:01:00.000Z"}) == "paused"
    assert services.status()["paused"] is True
