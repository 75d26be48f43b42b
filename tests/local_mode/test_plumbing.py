"""Local mode's stand-ins for what AWS does around the functions, one behaviour each.

Against an in-process moto server in a region of their own (other suites use moto in
us-east-1): schedules fire, tasks run and stop, templates resolve.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local_mode.assembly import Stack, load_stacks, stack_with_handler, synthesized
from local_mode.emulator import MotoEmulator
from local_mode.gateway import ApiDefinition, Cors, Route, converse
from local_mode.harness import free_port
from local_mode.plumbing import (
    CustomerClusters,
    EcsWatcher,
    SchedulerEmulator,
    due_time,
    is_ecs_task_state_change,
    rule_targets,
)
from local_mode.task_executor import TaskExecutor
from local_mode.templates import Physical, Resolver

pytestmark = pytest.mark.local_mode
REGION = "eu-west-3"


@pytest.fixture(scope="module")
def emulator() -> Iterator[MotoEmulator]:
    from moto.moto_api import state_manager

    emulator = MotoEmulator(free_port(), REGION)
    emulator.start()
    yield emulator
    emulator.stop()
    state_manager.unset_transition("ecs::task")


def make_cluster(
    emulator: MotoEmulator, credentials: dict[str, str] | None = None
) -> dict[str, str]:
    """A VPC, subnet, group, cluster, log group and task definition, in the account the
    credentials belong to (the default one without)."""

    def client(service: str) -> Any:
        return emulator.client(service, credentials=credentials)

    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"g{time.time_ns()}", Description="t", VpcId=vpc)[
        "GroupId"
    ]
    ecs = client("ecs")
    name = f"c{time.time_ns()}"
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    client("logs").create_log_group(logGroupName=f"/{name}")
    definition = ecs.register_task_definition(
        family=name,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "runner",
                "image": "runner",
                "memory": 512,
                "environment": [{"name": "FROM_DEFINITION", "value": "yes"}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": f"/{name}", "awslogs-stream-prefix": "runs"},
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return {"arn": arn, "name": name, "definition": definition, "subnet": subnet, "group": group}


@pytest.fixture
def cluster(emulator: MotoEmulator) -> dict[str, str]:
    return make_cluster(emulator)


def run_task(
    emulator: MotoEmulator,
    cluster: dict[str, str],
    run_id: str,
    credentials: dict[str, str] | None = None,
) -> str:
    return str(
        emulator.client("ecs", credentials=credentials).run_task(
            cluster=cluster["arn"],
            taskDefinition=cluster["definition"],
            startedBy=run_id,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [cluster["subnet"]],
                    "securityGroups": [cluster["group"]],
                }
            },
            overrides={
                "containerOverrides": [
                    {"name": "runner", "environment": [{"name": "RUN_ID", "value": run_id}]}
                ]
            },
        )["tasks"][0]["taskArn"]
    )


def executor(emulator: MotoEmulator, events: list[dict[str, Any]], script: str) -> TaskExecutor:
    return TaskExecutor(
        ecs=emulator.client("ecs"),
        logs=emulator.client("logs"),
        deliver=events.append,
        stamp=lambda arn, **fields: emulator.stamp_task(arn, **fields),
        process_environment={},
        account_id="123456789012",
        region=REGION,
        stop_grace_seconds=2,
        command=[sys.executable, "-c", script],
    )


def wait(predicate: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_task_that_exits_stops_with_its_exit_code_and_logs_its_output(
    emulator: MotoEmulator, cluster: dict[str, str]
) -> None:
    events: list[dict[str, Any]] = []
    script = "import os; print('run', os.environ['RUN_ID'], os.environ['FROM_DEFINITION']); raise SystemExit(3)"
    tasks = executor(emulator, events, script)
    arn = run_task(emulator, cluster, "run-exits")
    EcsWatcher(emulator.client("ecs"), cluster["arn"], tasks).tick()
    wait(lambda: len(events) == 3)

    assert [e["detail"]["lastStatus"] for e in events] == ["PENDING", "RUNNING", "STOPPED"]
    stopped = events[-1]["detail"]
    assert stopped["startedBy"] == "run-exits"
    assert stopped["containers"][0]["exitCode"] == 3
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["startedAt"] and stopped["stoppedAt"] and stopped["createdAt"]
    described = emulator.client("ecs").describe_tasks(cluster=cluster["arn"], tasks=[arn])["tasks"][
        0
    ]
    assert described["lastStatus"] == "STOPPED"
    assert isinstance(described["createdAt"], datetime)  # what the sweeper reads
    stream = f"runs/runner/{arn.rsplit('/', 1)[-1]}"
    logged = emulator.client("logs").get_log_events(
        logGroupName=f"/{cluster['name']}", logStreamName=stream
    )["events"]
    assert [e["message"] for e in logged] == ["run run-exits yes"]


def test_a_task_stopped_from_outside_gets_sigterm_and_its_reason(
    emulator: MotoEmulator, cluster: dict[str, str]
) -> None:
    events: list[dict[str, Any]] = []
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(1)))\n"
        "print('working', flush=True)\n"
        "time.sleep(60)\n"
    )
    tasks = executor(emulator, events, script)
    watcher = EcsWatcher(emulator.client("ecs"), cluster["arn"], tasks)
    arn = run_task(emulator, cluster, "run-stopped")
    watcher.tick()
    wait(lambda: len(events) == 2)
    emulator.client("ecs").stop_task(cluster=cluster["arn"], task=arn, reason="time limit reached")
    watcher.tick()
    wait(lambda: len(events) == 3)

    stopped = events[-1]["detail"]
    assert stopped["stoppedReason"] == "time limit reached"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["containers"][0]["exitCode"] == 1
    assert not tasks.running()


def test_tasks_in_another_account_run_there_with_that_accounts_credentials(
    emulator: MotoEmulator,
) -> None:
    customer = "210987654321"
    credentials = emulator.credentials_in(customer)
    ecs = emulator.client("ecs", credentials=credentials)
    logs = emulator.client("logs", credentials=credentials)
    other = make_cluster(emulator, credentials)
    assert f":{customer}:cluster/" in other["arn"]
    script = "import boto3; print(boto3.client('sts').get_caller_identity()['Account'])"
    events: list[dict[str, Any]] = []
    executors: dict[str, TaskExecutor] = {}

    def executor_for(account_id: str) -> tuple[Any, TaskExecutor]:
        executors[account_id] = TaskExecutor(
            ecs=ecs,
            logs=logs,
            deliver=events.append,
            stamp=lambda arn, **fields: emulator.stamp_task(arn, account_id, **fields),
            process_environment={
                **emulator.environment(),
                "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
                "AWS_SESSION_TOKEN": credentials["aws_session_token"],
            },
            account_id=account_id,
            region=REGION,
            stop_grace_seconds=2,
            command=[sys.executable, "-c", script],
        )
        return ecs, executors[account_id]

    assert customer in emulator.accounts_with_clusters()
    watcher = CustomerClusters(
        discover=lambda: [a for a in emulator.accounts_with_clusters() if a == customer],
        executor_for=executor_for,
    )
    arn = run_task(emulator, other, "run-elsewhere", credentials)
    watcher.tick()
    wait(lambda: len(events) == 3)

    assert list(executors) == [customer]
    described = ecs.describe_tasks(cluster=other["arn"], tasks=[arn])["tasks"][0]
    # What a Tier 2 run is followed by: DescribeTasks alone, exit code included.
    assert described["lastStatus"] == "STOPPED"
    assert described["containers"][0]["exitCode"] == 0
    stream = f"runs/runner/{arn.rsplit('/', 1)[-1]}"
    logged = logs.get_log_events(logGroupName=f"/{other['name']}", logStreamName=stream)
    assert [e["message"] for e in logged["events"]] == [customer]


def test_a_due_one_time_schedule_stops_its_task_and_deletes_itself(
    emulator: MotoEmulator, cluster: dict[str, str]
) -> None:
    scheduler = emulator.client("scheduler")
    group = f"g{time.time_ns()}"
    scheduler.create_schedule_group(Name=group)
    arn = run_task(emulator, cluster, "run-scheduled")
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    for name, when in (("due", past), ("later", future)):
        scheduler.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=f"at({when})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": "arn:aws:scheduler:::aws-sdk:ecs:stopTask",
                "RoleArn": "arn:aws:iam::123456789012:role/stopper",
                "Input": json.dumps({"Cluster": cluster["arn"], "Task": arn, "Reason": "limit"}),
            },
        )
    SchedulerEmulator(scheduler, emulator.client).tick()

    task = emulator.client("ecs").describe_tasks(cluster=cluster["arn"], tasks=[arn])["tasks"][0]
    assert (task["lastStatus"], task["stoppedReason"]) == ("STOPPED", "limit")
    left = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert left == ["later"]


def test_at_expressions_honour_their_time_zone() -> None:
    due = due_time(
        {
            "ScheduleExpression": "at(2030-01-01T12:00:00)",
            "ScheduleExpressionTimezone": "Europe/Paris",
        }
    )
    assert due == datetime(2030, 1, 1, 11, 0, tzinfo=UTC)
    assert due_time({"ScheduleExpression": "rate(1 minute)"}) is None


class FakeProvisioner:
    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []

    def supports(self, resource_type: str) -> bool:
        return resource_type == "AWS::DynamoDB::Table"

    def create(
        self, stack: Stack, logical_id: str, resource_type: str, properties: dict[str, Any]
    ) -> Physical:
        self.created.append((logical_id, properties))
        return Physical(ref=f"table-{logical_id}", attributes={"Arn": f"arn:table/{logical_id}"})


def test_the_resolver_follows_refs_imports_and_conditions_across_stacks() -> None:
    producer = Stack(
        "Producer",
        "producer",
        {
            "Resources": {
                "Things": {"Type": "AWS::DynamoDB::Table", "Properties": {"KeySchema": []}}
            },
            "Outputs": {
                "Out": {
                    "Value": {"Fn::GetAtt": ["Things", "Arn"]},
                    "Export": {"Name": "things-arn"},
                }
            },
        },
        [],
    )
    consumer = Stack(
        "Consumer",
        "consumer",
        {
            "Conditions": {"Yes": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-3"]}},
            "Resources": {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"FunctionName": "my-fn"},
                }
            },
        },
        ["Producer"],
    )
    provisioner = FakeProvisioner()
    resolver = Resolver(
        [producer, consumer], provisioner, region="eu-west-3", account_id="111122223333"
    )
    value = resolver.resolve(
        consumer,
        {
            "A": {"Fn::ImportValue": "things-arn"},
            "B": {"Fn::Sub": "${AWS::Region}/${Fn}/${!Literal}"},
            "C": {"Fn::If": ["Yes", {"Fn::Join": ["-", ["x", {"Ref": "AWS::AccountId"}]]}, "no"]},
            "D": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
            "E": {"Ref": "AWS::NoValue"},
        },
    )
    assert value == {
        "A": "arn:table/Things",
        "B": "eu-west-3/my-fn/${Literal}",
        "C": "x-111122223333",
        "D": "b",
    }
    assert [name for name, _ in provisioner.created] == ["Things"]  # created once, lazily


def test_routes_match_path_parameters_and_prefer_literal_segments() -> None:
    route = Route("GET", "/runs/{runId}/logs", authorized=True)
    # Routes see the path the server has decoded once (as API Gateway routes it, where
    # /runs/r%2F1/logs is /runs/r/1/logs and matches nothing): no second decoding here.
    assert route.match("GET", "/runs/r 1/logs") == {"runId": "r 1"}
    assert route.match("GET", "/runs/r%2F1/logs") == {"runId": "r%2F1"}
    assert route.match("GET", "/runs/r/1/logs") is None
    assert route.match("POST", "/runs/r1/logs") is None
    assert route.match("GET", "/runs//logs") is None
    api = ApiDefinition(
        routes=[Route("GET", "/org/{part}", authorized=True), Route("GET", "/org/members", True)],
        cors=Cors(),
        api_id="local",
        account_id="123456789012",
    )
    found = api.find("GET", "/org/members")
    assert found is not None and found[0].path == "/org/members"
    found = api.find("GET", "/org/other")
    assert found is not None and found == (api.routes[0], {"part": "other"})


def test_the_converse_stand_in_is_deterministic_and_respects_max_tokens() -> None:
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": [{"text": "hi there"}]}],
            "inferenceConfig": {"maxTokens": 5},
        }
    ).encode()
    first, second = converse("m", body), converse("m", body)
    assert first.body == second.body
    answer = json.loads(first.body)
    assert answer["stopReason"] == "max_tokens"
    assert answer["usage"]["outputTokens"] == 5
    assert answer["usage"]["inputTokens"] == 2


def test_the_templates_rules_give_the_sweeper_its_rate_and_task_events_the_ecs_changes() -> None:
    stacks = load_stacks(synthesized())
    api_stack, _ = stack_with_handler(stacks, "handlers.api.handler")
    rules = rule_targets(api_stack)
    scheduled = {(rule.handler, rule.period_seconds) for rule in rules if rule.period_seconds}
    assert scheduled == {("handlers.sweeper.handler", 60)}
    ecs = [rule.handler for rule in rules if is_ecs_task_state_change(rule)]
    assert ecs == ["handlers.task_events.handler"]


def test_only_enabled_rate_rules_with_a_function_target_are_emulated() -> None:
    def rule(**properties: Any) -> dict[str, Any]:
        return {"Type": "AWS::Events::Rule", "Properties": properties}

    target = [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "T"}]
    stack = Stack(
        "S",
        "s",
        {
            "Resources": {
                "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "handlers.x.h"}},
                "Hourly": rule(ScheduleExpression="rate(2 hours)", Targets=target),
                "Off": rule(ScheduleExpression="rate(1 minute)", State="DISABLED", Targets=target),
                "Cron": rule(ScheduleExpression="cron(0 12 * * ? *)", Targets=target),
                "Elsewhere": rule(
                    ScheduleExpression="rate(1 day)", Targets=[{"Arn": "arn:aws:sqs:q", "Id": "Q"}]
                ),
            }
        },
        [],
    )
    assert [(r.logical_id, r.handler, r.period_seconds) for r in rule_targets(stack)] == [
        ("Hourly", "handlers.x.h", 7200)
    ]


# ---- SNS -> SQS -> function, and CloudFormation's response bucket ----------------------------


def test_sns_reaches_the_function_through_the_queue_and_failures_stay_queued(
    emulator: MotoEmulator,
) -> None:
    from local_mode.plumbing import QueuePoller

    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic = sns.create_topic(Name=f"t{time.time_ns()}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"q{time.time_ns()}", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"}
    )
    seen: list[dict[str, Any]] = []
    fail = {"first"}

    def invoke(handler: str, event: dict[str, Any]) -> dict[str, Any]:
        [record] = event["Records"]
        envelope = json.loads(record["body"])
        seen.append(envelope)
        failed = envelope["Message"] in fail
        fail.discard(envelope["Message"])
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}] if failed else []}

    poller = QueuePoller(
        sqs, queue_url=url, queue_arn=arn, region=REGION, handler="handlers.x.h", invoke=invoke
    )
    sns.publish(TopicArn=topic, Message="first")

    poller.tick()

    # SNS's envelope (raw delivery off); the failed record came back and then succeeded.
    assert [(e["Type"], e["TopicArn"], e["Message"]) for e in seen] == [
        ("Notification", topic, "first"),
        ("Notification", topic, "first"),
    ]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_the_templates_registration_queue_is_found_by_type() -> None:
    """The control plane's SNS -> SQS subscription and its event source mapping to the
    registration function, as local mode reads them (not by logical id)."""
    stacks = load_stacks(synthesized())
    stack, _ = stack_with_handler(stacks, "handlers.api.handler")
    resources = stack.resources
    subscriptions = [r for r in resources.values() if r["Type"] == "AWS::SNS::Subscription"]
    # The registration topic's queue, and the budget topic's kill-switch function.
    assert sorted(s["Properties"]["Protocol"] for s in subscriptions) == ["lambda", "sqs"]
    subscriptions = [s for s in subscriptions if s["Properties"]["Protocol"] == "sqs"]
    [mapping] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    assert subscriptions[0]["Properties"]["Endpoint"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    function = resources[mapping["Properties"]["FunctionName"]["Ref"]]
    assert function["Properties"]["Handler"] == "handlers.registration.handler"


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (
            "https://cloudformation-custom-resource-response-euwest3.s3.eu-west-3.amazonaws.com/k%7Cx?X-Amz-Signature=s",
            "http://127.0.0.1:9/cloudformation-custom-resource-response-euwest3/k%7Cx",
        ),
        (
            "https://s3.amazonaws.com/cloudformation-custom-resource-response-useast1/key",
            "http://127.0.0.1:9/cloudformation-custom-resource-response-useast1/key",
        ),
        ("https://attacker.example.com/cloudformation-custom-resource-response-useast1/k", None),
        ("https://my-bucket.s3.amazonaws.com/key", None),
    ],
)
def test_only_the_response_bucket_is_re_addressed_to_the_emulator(
    url: str, target: str | None
) -> None:
    from local_mode.plumbing import emulated_s3_url

    assert emulated_s3_url(url, "http://127.0.0.1:9") == target


def test_the_registration_function_answers_into_the_emulated_response_bucket(
    emulator: MotoEmulator,
) -> None:
    """The production sender (its URL check untouched) PUTs a CloudFormation-shaped URL;
    local mode's transport lands it in the emulator's bucket."""
    import urllib.request

    from local_mode.assembly import ROOT
    from local_mode.plumbing import install_s3_response_transport, response_bucket

    if str(ROOT / "lambda_src") not in sys.path:
        sys.path.insert(0, str(ROOT / "lambda_src"))
    from agent_builder.gateways.cfn_response import ResponseSender

    s3 = emulator.client("s3")
    bucket = response_bucket(REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    url = f"https://{bucket}.s3.{REGION}.amazonaws.com/stack%7CRegistration%7Creq-1?X-Amz-S=x"
    previous = urllib.request._opener  # type: ignore[attr-defined]
    install_s3_response_transport(emulator.endpoint)
    try:
        ResponseSender().send(url, {"Status": "SUCCESS"})
    finally:
        urllib.request.install_opener(previous)  # type: ignore[arg-type]

    body = s3.get_object(Bucket=bucket, Key="stack|Registration|req-1")["Body"].read()
    assert json.loads(body) == {"Status": "SUCCESS"}
