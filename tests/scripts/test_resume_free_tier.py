"""make resume-free-tier: the deployed kill switch's own settings, the same domain code,
the owner's identity in the audit record, and an alarm; refused without a region."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from agent_builder.audit import AuditEvent
from local_mode.assembly import function_tables, load_stacks, synthesized
from local_mode.emulator import create_table
from tests.scripts.conftest import load_script

resume_free_tier = load_script("resume_free_tier")

PREFIX = "agent-builder"
REGION = "us-east-1"


def deploy_kill_switch(session: Any) -> dict[str, str]:
    """What the stacks create for it: the tables (from the templates), the topics, and
    the function with its environment."""
    tables = function_tables(load_stacks(synthesized()))
    dynamodb = session.client("dynamodb")
    names = {"USAGE_TABLE": f"{PREFIX}-usage", "AUDIT_TABLE": f"{PREFIX}-audit"}
    for variable, name in names.items():
        create_table(dynamodb, name, tables[variable].properties)
    sns, sqs = session.client("sns"), session.client("sqs")
    alarms = sns.create_topic(Name=f"{PREFIX}-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="owner-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=alarms, Protocol="sqs", Endpoint=queue_arn)
    environment = {
        **names,
        "BUDGET_TOPIC_ARN": sns.create_topic(Name=f"{PREFIX}-budget-kill-switch")["TopicArn"],
        "BUDGET_NAME": f"{PREFIX}-monthly",
        "ALARM_TOPIC_ARN": alarms,
        "POWERTOOLS_SERVICE_NAME": f"{PREFIX}-control-plane",
    }
    role = session.client("iam").create_role(
        RoleName=f"{PREFIX}-budgetswitch-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handlers/budget.py", "")
    session.client("lambda").create_function(
        FunctionName=f"{PREFIX}-budgetswitch",
        Runtime="python3.13",
        Role=role,
        Handler="handlers.budget.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": environment},
    )
    return {**environment, "QUEUE": queue}


def pause(session: Any, environment: dict[str, str]) -> None:
    switch = resume_free_tier.build_switch(session, environment)
    assert switch._state.pause(  # what the function does on the budget's alert
        datetime.now(UTC),
        by="budgets.amazonaws.com",
        audit=AuditEvent(actor="#platform", action="freetier.pause"),
    )


def test_resume_lifts_this_months_pause_as_the_owner_audited_and_alarmed(session: Any) -> None:
    environment = deploy_kill_switch(session)
    pause(session, environment)
    assert resume_free_tier.run(session, PREFIX, status_only=True)["paused"] is True

    outcome = resume_free_tier.run(session, PREFIX)

    owner = session.client("sts").get_caller_identity()["Arn"]
    assert outcome["result"] == "resumed" and outcome["paused"] is False
    assert outcome["by"] == owner
    records = session.client("dynamodb").scan(TableName=environment["AUDIT_TABLE"])["Items"]
    [resumed] = [r for r in records if r["action"]["S"] == "freetier.resume"]
    assert resumed["by"]["S"] == owner
    assert resumed["scope"]["S"] == "user##platform"
    inbox = session.client("sqs").receive_message(QueueUrl=environment["QUEUE"])["Messages"]
    assert "RESUMED" in json.loads(inbox[0]["Body"])["Subject"]
    assert resume_free_tier.run(session, PREFIX)["result"] == "not paused"


def test_no_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(SystemExit, match="AWS_REGION"):
        resume_free_tier.main([])


def test_a_platform_not_deployed_here_says_so(
    session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert resume_free_tier.main(["--prefix", "nothing-here"]) == 1
    assert "nothing-here-budgetswitch is not deployed" in capsys.readouterr().err
