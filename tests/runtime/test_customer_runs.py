"""Tier 2 deployments: into the connected account, uncharged, followed through the role."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.runtime.support import (
    AGENT,
    CUSTOMER_ACCOUNT,
    CUSTOMER_REGION,
    PREFIX,
    RUNNER_IMAGE,
    USER,
    ApiCall,
    Customer,
    Platform,
    audit_records,
    aws_answer,
    aws_error,
    paste_connect,
    stopped_task,
)

Hooks = Any


@pytest.fixture
def connected(api: ApiCall, customer: Customer) -> Customer:
    answer = paste_connect(api, customer)
    assert answer.status == 200, answer.body
    return customer


def deploy(api: ApiCall, agent_id: str, *, key: str | None = None, text: str = "Go") -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api("POST", f"/agents/{agent_id}/deployments", body={"input": text}, headers=headers)


def customer_task(customer: Customer) -> dict[str, Any]:
    ecs = customer.client("ecs")
    [arn] = ecs.list_tasks(cluster=customer.cluster_arn)["taskArns"]
    [task] = ecs.describe_tasks(cluster=customer.cluster_arn, tasks=[arn], include=["TAGS"])[
        "tasks"
    ]
    return dict(task)


def test_a_personal_deployment_runs_in_the_customer_account_not_the_platform(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform
) -> None:
    answer = deploy(api, agent_id)

    assert answer.status == 202, answer.body
    assert answer.body["target"] == "customer"
    assert answer.body["accountId"] == CUSTOMER_ACCOUNT
    assert answer.body["region"] == CUSTOMER_REGION
    task = customer_task(connected)
    assert task["taskArn"].startswith(f"arn:aws:ecs:{CUSTOMER_REGION}:{CUSTOMER_ACCOUNT}:task/")
    assert task["startedBy"] == answer.body["runId"]
    assert platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"] == []


def test_the_customer_task_is_tagged_and_uses_the_stacks_network(
    api: ApiCall, agent_id: str, connected: Customer
) -> None:
    run_id = deploy(api, agent_id).body["runId"]

    task = customer_task(connected)
    assert {t["key"]: t["value"] for t in task["tags"]} == {
        "Project": PREFIX,
        "userId": USER,
        "agentId": agent_id,
        "runId": run_id,
    }
    assert task["launchType"] == "FARGATE"


def test_run_task_asks_for_a_public_ip_in_the_registered_subnets(
    api: ApiCall, agent_id: str, connected: Customer, aws_hooks: Hooks
) -> None:
    requests: list[dict[str, Any]] = []
    aws_hooks("provide-client-params.ecs.RunTask", lambda params, **_: requests.append(params))

    deploy(api, agent_id)

    [request] = requests
    assert request["cluster"] == connected.cluster_arn
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": connected.subnet_ids,
        "securityGroups": [connected.security_group_id],
        "assignPublicIp": "ENABLED",
    }


def assert_no_revision_remains(customer: Customer) -> None:
    """No revision of the runner family is left, ACTIVE or INACTIVE: none keeps a run's
    instructions or input in the customer's account."""
    ecs = customer.client("ecs")
    for status in ("ACTIVE", "INACTIVE"):
        arns = ecs.list_task_definitions(familyPrefix=f"{PREFIX}-agent-runner", status=status)
        assert arns["taskDefinitionArns"] == [], status
    task = (
        customer_task(customer)
        if ecs.list_tasks(cluster=customer.cluster_arn)["taskArns"]
        else None
    )
    if task is not None:
        with pytest.raises(ecs.exceptions.ClientException):
            ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])


def test_the_task_definition_is_registered_in_the_customer_account_and_deleted(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    registered: list[dict[str, Any]] = []
    aws_hooks(
        "provide-client-params.ecs.RegisterTaskDefinition",
        lambda params, **_: registered.append(params),
    )
    run_id = deploy(api, agent_id, text="What is 2+2?").body["runId"]

    [request] = registered
    assert request["family"] == f"{PREFIX}-agent-runner"
    assert request["tags"] == [{"key": "Project", "value": PREFIX}]  # the deployer's condition
    assert request["executionRoleArn"] == (
        f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/{PREFIX}-task-execution"
    )
    assert request["taskRoleArn"] == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/{PREFIX}-agent-task"
    assert request["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    [container] = request["containerDefinitions"]
    assert container["image"] == RUNNER_IMAGE
    assert container["memory"] == 512
    assert container["logConfiguration"]["options"] == {
        "awslogs-group": f"/{PREFIX}/agent-runs",
        "awslogs-region": CUSTOMER_REGION,
        "awslogs-stream-prefix": "runs",
    }
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["RUN_ID"] == run_id
    assert json.loads(environment["AGENT_REQUEST"]) == {
        "runId": run_id,
        "agent": {
            "name": AGENT["name"],
            "model": AGENT["model"],
            "instructions": AGENT["instructions"],
            "parameters": {"temperature": 0.2, "maxTokens": 256},
        },
        "input": "What is 2+2?",
    }
    assert_no_revision_remains(connected)
    assert platform.client("ecs").list_task_definitions(familyPrefix=f"{PREFIX}-agent-runner")[
        "taskDefinitionArns"
    ] == [platform.task_definition_arn]


def test_the_deployer_is_asked_to_delete_exactly_the_revision_it_registered(
    api: ApiCall, agent_id: str, connected: Customer, aws_hooks: Hooks
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    for operation in ("DeregisterTaskDefinition", "DeleteTaskDefinitions"):
        aws_hooks(
            f"provide-client-params.ecs.{operation}",
            lambda params, operation=operation, **_: calls.append((operation, params)),
        )

    assert deploy(api, agent_id).status == 202

    revision = customer_task(connected)["taskDefinitionArn"]
    assert calls == [
        ("DeregisterTaskDefinition", {"taskDefinition": revision}),
        ("DeleteTaskDefinitions", {"taskDefinitions": [revision]}),
    ]


@pytest.mark.parametrize(
    "refusal",
    [
        aws_error("AccessDeniedException"),
        aws_answer(
            {
                "taskDefinitions": [],
                "failures": [{"arn": "x", "reason": "TASK_DEFINITION_IN_USE"}],
            }
        ),
    ],
    ids=["denied", "failures"],
)
def test_a_refused_delete_does_not_fail_a_started_run_and_leaves_no_active_revision(
    api: ApiCall, agent_id: str, connected: Customer, aws_hooks: Hooks, refusal: Any
) -> None:
    aws_hooks("before-call.ecs.DeleteTaskDefinitions", refusal)

    answer = deploy(api, agent_id)

    assert answer.status == 202, answer.body
    ecs = connected.client("ecs")
    active = ecs.list_task_definitions(familyPrefix=f"{PREFIX}-agent-runner", status="ACTIVE")
    assert active["taskDefinitionArns"] == []


def test_an_agents_own_image_is_deployed_instead_of_the_runner(
    api: ApiCall, connected: Customer, aws_hooks: Hooks
) -> None:
    image = f"{CUSTOMER_ACCOUNT}.dkr.ecr.{CUSTOMER_REGION}.amazonaws.com/my-agent:1"
    agent_id = api("POST", "/agents", body={**AGENT, "image": image}).body["agentId"]
    registered: list[dict[str, Any]] = []
    aws_hooks(
        "provide-client-params.ecs.RegisterTaskDefinition",
        lambda params, **_: registered.append(params),
    )

    assert deploy(api, agent_id).status == 202

    assert registered[0]["containerDefinitions"][0]["image"] == image


def test_customer_deployments_are_not_charged_to_the_free_quota(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    transactions: list[dict[str, Any]] = []
    aws_hooks(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: transactions.append(params),
    )

    for index in range(4):  # more than the 3 free tests
        assert deploy(api, agent_id, key=f"k{index}").status == 202

    assert platform.tests_used() == 0
    touched = json.dumps(transactions)
    assert "tests#" not in touched and "testsUsed" not in touched
    assert api("GET", "/me").body["usage"]["testsUsed"] == 0


def test_a_retried_deployment_returns_the_same_run_once(
    api: ApiCall, agent_id: str, connected: Customer
) -> None:
    first = deploy(api, agent_id, key="deploy-1")
    again = deploy(api, agent_id, key="deploy-1")

    assert again.status == 202
    assert again.body["runId"] == first.body["runId"]
    assert len(connected.client("ecs").list_tasks(cluster=connected.cluster_arn)["taskArns"]) == 1


def test_the_run_record_names_the_customer_target(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform
) -> None:
    run_id = deploy(api, agent_id).body["runId"]

    [run] = [r for r in platform.table_items("RUNS_TABLE") if r["runId"] == run_id]
    assert run["target"] == "customer"
    assert run["accountId"] == CUSTOMER_ACCOUNT and run["region"] == CUSTOMER_REGION
    assert run["taskArn"].startswith(f"arn:aws:ecs:{CUSTOMER_REGION}:{CUSTOMER_ACCOUNT}:task/")
    assert "period" not in run


def test_a_deployment_refused_by_the_customer_account_answers_422_and_fails_the_run(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    aws_hooks("before-call.ecs.RunTask", aws_error("AccessDeniedException"))

    answer = deploy(api, agent_id, key="refused")

    assert answer.status == 422
    assert answer.error_code == "DEPLOY_FAILED"
    assert "RunTask failed with AccessDeniedException" in answer.body["error"]["message"]
    [run] = platform.table_items("RUNS_TABLE")
    assert run["status"] == "FAILED"
    # The revision registered for it was deregistered and deleted all the same.
    assert_no_revision_remains(connected)
    assert deploy(api, agent_id, key="refused").error_code == "DEPLOY_FAILED"


def test_a_customer_account_that_does_not_answer_is_422_not_a_500(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://ecs.eu-west-1.amazonaws.com")

    aws_hooks("before-call.ecs.RunTask", unreachable)

    answer = deploy(api, agent_id, key="unreachable")

    assert (answer.status, answer.error_code) == (422, "DEPLOY_FAILED")
    assert "AWS did not answer: Could not connect" in answer.body["error"]["message"]
    [run] = platform.table_items("RUNS_TABLE")
    assert run["status"] == "FAILED"
    assert_no_revision_remains(connected)


def test_a_role_that_can_no_longer_be_assumed_fails_the_deployment_clearly(
    api: ApiCall, agent_id: str, connected: Customer, aws_hooks: Hooks
) -> None:
    aws_hooks(
        "before-call.sts.AssumeRole",
        aws_error("AccessDenied", when=lambda p: "deployer" in json.dumps(p["body"], default=str)),
    )

    answer = deploy(api, agent_id)

    assert answer.status == 422
    assert "could not assume your deployer role" in answer.body["error"]["message"]


def test_customer_deployments_are_audited(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform
) -> None:
    run_id = deploy(api, agent_id).body["runId"]

    [record] = audit_records(platform, "run.deploy")
    assert record["result"] == "success"
    assert record["runId"] == run_id and record["agentId"] == agent_id
    assert record["accountId"] == CUSTOMER_ACCOUNT and record["region"] == CUSTOMER_REGION


def test_get_run_refreshes_the_customer_task_state_through_the_role(
    api: ApiCall, agent_id: str, connected: Customer, aws_hooks: Hooks
) -> None:
    run_id = deploy(api, agent_id).body["runId"]
    task_arn = customer_task(connected)["taskArn"]
    aws_hooks("before-call.ecs.DescribeTasks", stopped_task(task_arn))

    answer = api("GET", f"/runs/{run_id}")

    assert answer.body["status"] == "STOPPED"
    assert answer.body["exitCode"] == 0
    assert answer.body["startedAt"] == "2025-05-01T12:00:00.000Z"
    assert answer.body["stopReason"] == "Essential container in task exited"


def test_customer_logs_are_read_from_the_customer_log_group(
    api: ApiCall, agent_id: str, connected: Customer
) -> None:
    run_id = deploy(api, agent_id).body["runId"]
    task_id = customer_task(connected)["taskArn"].rsplit("/", 1)[-1]
    logs = connected.client("logs")
    stream = f"runs/runner/{task_id}"
    logs.create_log_stream(logGroupName=connected.log_group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=connected.log_group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(datetime.now(UTC).timestamp() * 1000), "message": "4"}],
    )

    answer = api("GET", f"/runs/{run_id}/logs")

    assert answer.status == 200
    assert [line["message"] for line in answer.body["lines"]] == ["4"]


def test_after_disconnect_customer_runs_stay_readable_and_frozen(
    api: ApiCall, agent_id: str, connected: Customer, aws_hooks: Hooks
) -> None:
    run_id = deploy(api, agent_id).body["runId"]
    assert api("DELETE", "/aws-account").status == 204
    described: list[Any] = []
    aws_hooks("provide-client-params.ecs.DescribeTasks", lambda params, **_: described.append(1))

    run = api("GET", f"/runs/{run_id}")
    runs = api("GET", "/runs")
    logs = api("GET", f"/runs/{run_id}/logs")

    assert run.status == 200 and run.body["status"] == "PENDING"
    assert [r["runId"] for r in runs.body["runs"]] == [run_id]
    assert described == []  # no longer read through the (disconnected) role
    assert logs.status == 409
    assert logs.error_code == "ACCOUNT_NOT_CONNECTED"
    assert CUSTOMER_ACCOUNT in logs.body["error"]["message"]


def test_after_disconnect_deployments_are_refused_again(
    api: ApiCall, agent_id: str, connected: Customer, platform: Platform
) -> None:
    api("DELETE", "/aws-account")

    answer = deploy(api, agent_id)

    # Back to freemium: the deployment is a platform test again, on the free quota.
    assert answer.status == 202
    assert answer.body["target"] == "platform"
    assert platform.tests_used() == 1


def test_an_enterprise_users_connection_does_not_reroute_their_deployments(
    api: ApiCall, agent_id: str, customer: Customer, platform: Platform
) -> None:
    from tests.runtime.support import set_tier

    set_tier(platform, "enterprise")
    paste_connect(api, customer)

    answer = deploy(api, agent_id)

    assert answer.status == 409
    assert answer.error_code == "NO_ENTERPRISE_TARGET"
