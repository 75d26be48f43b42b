"""Runtime fixtures: moto for every AWS service the functions use (Stubber, in the
tests, where moto cannot produce a case: RunTask `failures`, a Scheduler outage).

Tables come from ONE function, create_tables(), which creates them from the synthesized
templates' own AWS::DynamoDB::Table definitions (local_mode/assembly.py reads them), the
way local mode does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend

from agent_builder import wiring
from local_mode.assembly import Table, function_tables, load_stacks, synthesized
from local_mode.emulator import create_table
from tests.runtime.support import (
    AGENT,
    BUCKET,
    CUSTOMER_ACCOUNT,
    CUSTOMER_REGION,
    CUSTOMER_ROLE_ARN,
    LAUNCHES_PER_MINUTE,
    LOG_GROUP,
    MAX_AGENTS_PER_USER,
    MAX_RUNNING_TESTS,
    MODELS,
    PLATFORM_TESTS_PER_MONTH,
    PREFIX,
    REGION,
    SCHEDULE_GROUP,
    TABLES,
    TESTS_PER_MONTH,
    TIER2_ENV,
    TIER3_ENV,
    Answer,
    ApiCall,
    Customer,
    Platform,
    api_handler,
    http_event,
    lambda_context,
)

RESET_PER_TEST = ("dynamodb", "ecs", "s3", "logs", "scheduler", "cloudformation")


@functools.cache
def _template_tables() -> dict[str, Table]:
    """The control plane's tables as the synthesized templates declare them, by the
    environment variable that names them (synthesized first if cdk.out is stale)."""
    return function_tables(load_stacks(synthesized()))


def create_tables(dynamodb: Any) -> None:
    """The templates' own tables (keys, GSIs, TTLs), named as TABLES names them."""
    tables = _template_tables()
    assert set(tables) == set(TABLES), f"the functions' tables are {sorted(tables)}"
    for variable, table in tables.items():
        create_table(dynamodb, TABLES[variable], table.properties)


FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
NOT_INHERITED = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def _fake_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NOT_INHERITED:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account, whatever the developer's shell has."""
    _fake_environment(monkeypatch)


@pytest.fixture(scope="module")
def _moto_network() -> Iterator[tuple[str, str]]:
    """moto, and the VPC the tasks need, once per module.

    EC2 is by far moto's slowest backend to set up (~0.35 s); everything else is reset
    and recreated for every test by `platform`. Module scope keeps the mock from
    outliving this suite's modules in a shared pytest process.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        _fake_environment(monkeypatch)
        with mock_aws():
            wiring.reset()
            ec2 = boto3.client("ec2", region_name=REGION)
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            # As the platform's VPC has it (and moto's awsvpc tasks need it for their ENI).
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
            group = ec2.create_security_group(
                GroupName="tasks", Description="egress only", VpcId=vpc
            )["GroupId"]
            yield subnet, group
            wiring.reset()


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, _moto_network: tuple[str, str]) -> Iterator[Platform]:
    subnet, group = _moto_network
    for service in RESET_PER_TEST:
        # Per service: BackendDict.reset() is a classmethod that would reset EC2 too.
        for account in get_backend(service).values():  # type: ignore[call-overload]
            account.reset()
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(
        clusterName=f"{PREFIX}-cluster", capacityProviders=["FARGATE", "FARGATE_SPOT"]
    )["cluster"]["clusterArn"]
    task_definition = ecs.register_task_definition(
        family=f"{PREFIX}-agent-runner",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        # moto needs container-level memory to place a task.
        containerDefinitions=[{"name": "runner", "image": "runner:latest", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=LOG_GROUP)
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=SCHEDULE_GROUP)
    create_tables(boto3.client("dynamodb", region_name=REGION))
    env = {
        "PROJECT_NAME": PREFIX,
        **TABLES,
        "CLUSTER_ARN": cluster,
        "TASK_DEFINITION_ARN": task_definition,
        "RUNNER_CONTAINER_NAME": "runner",
        "SUBNET_IDS": subnet,
        "SECURITY_GROUP_ID": group,
        "USE_SPOT": "true",
        "ARTIFACTS_BUCKET": BUCKET,
        "LOG_GROUP_NAME": LOG_GROUP,
        "LOG_STREAM_PREFIX": "runs",
        "FREE_TESTS_PER_MONTH": str(TESTS_PER_MONTH),
        "MAX_TEST_MINUTES": "5",
        "LAUNCHES_PER_MINUTE": str(LAUNCHES_PER_MINUTE),
        "ALLOWED_MODELS": ",".join(MODELS),
        "MAX_OUTPUT_TOKENS": "1024",
        "MAX_CONCURRENT_TEST_TASKS": str(MAX_RUNNING_TESTS),
        "PLATFORM_FREE_TESTS_PER_MONTH": str(PLATFORM_TESTS_PER_MONTH),
        "MAX_AGENTS_PER_USER": str(MAX_AGENTS_PER_USER),
        "SCHEDULE_GROUP_NAME": SCHEDULE_GROUP,
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/agent-builder-stopper",
        "RUN_RETENTION_DAYS": "30",
        "POWERTOOLS_SERVICE_NAME": "agent-builder-test",
        **TIER2_ENV,
        # The receipt's price of a test task (cdk.json testTask*).
        "TEST_TASK_CPU": "256",
        "TEST_TASK_MEMORY_MIB": "512",
        "TEST_TASK_ARCHITECTURE": "ARM64",
        # The budget's kill switch (tests/runtime/test_kill_switch.py creates the topics).
        "BUDGET_TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:{PREFIX}-budget-kill-switch",
        "BUDGET_NAME": f"{PREFIX}-monthly",
        "ALARM_TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:{PREFIX}-alarms",
        **TIER3_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Same fake credentials and region in every case: the clients can stay.
    wiring.reset(keep_clients=True)
    yield Platform(cluster, task_definition, subnet, group, env)
    wiring.reset(keep_clients=True)


@pytest.fixture
def api(platform: Platform) -> ApiCall:
    def call(method: str, path: str, **kwargs: Any) -> Answer:
        handler = api_handler(path)
        result = handler(http_event(method, path, **kwargs), lambda_context())
        raw = result.get("body") or ""
        return Answer(
            status=result["statusCode"],
            headers={k.lower(): v for k, v in (result.get("headers") or {}).items()},
            body=json.loads(raw) if raw else None,
        )

    return call


@pytest.fixture
def agent_id(api: ApiCall) -> str:
    answer = api("POST", "/agents", body=AGENT)
    assert answer.status == 201, answer.body
    return str(answer.body["agentId"])


def customer_credentials() -> dict[str, Any]:
    """moto: credentials of a role in the customer's account act in that account."""
    sts = boto3.client("sts", region_name=REGION)
    return dict(
        sts.assume_role(RoleArn=CUSTOMER_ROLE_ARN, RoleSessionName="test-setup")["Credentials"]
    )


@pytest.fixture(scope="module")
def _customer_network(_moto_network: tuple[str, str]) -> dict[str, Any]:
    """The onboarding stack's VPC in the customer's account (module scope, like EC2 above)."""
    credentials = customer_credentials()
    ec2 = boto3.client(
        "ec2",
        region_name=CUSTOMER_REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    tags = [
        {"Key": "aws-cdk:subnet-type", "Value": "Public"},
        {"Key": "Project", "Value": PREFIX},
    ]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=f"10.1.{index}.0/24",
            TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
        )["Subnet"]["SubnetId"]
        for index in (0, 1)
    ]
    group = ec2.create_security_group(
        GroupName=f"{PREFIX}-agent-tasks",
        Description="egress only",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "Project", "Value": PREFIX}]}
        ],
    )["GroupId"]
    return {"vpc": vpc, "subnets": sorted(subnets), "group": group}


@pytest.fixture
def customer(platform: Platform, _customer_network: dict[str, Any]) -> Customer:
    """The customer's account 111111111111 with what the onboarding stack creates.

    moto evaluates no trust policy: any role can be assumed, so the tests check the
    AssumeRole requests themselves (ExternalId, SourceIdentity) with botocore hooks.
    """
    credentials = customer_credentials()
    partial = Customer(
        account_id=CUSTOMER_ACCOUNT,
        region=CUSTOMER_REGION,
        role_arn=CUSTOMER_ROLE_ARN,
        vpc_id=_customer_network["vpc"],
        subnet_ids=_customer_network["subnets"],
        security_group_id=_customer_network["group"],
        cluster_arn="",
        log_group=f"/{PREFIX}/agent-runs",
        credentials=credentials,
    )
    partial.cluster_arn = partial.client("ecs").create_cluster(clusterName=f"{PREFIX}-cluster")[
        "cluster"
    ]["clusterArn"]
    partial.client("logs").create_log_group(logGroupName=partial.log_group)
    return partial


@pytest.fixture
def aws_hooks() -> Iterator[Callable[[str, Callable[..., Any]], None]]:
    """Register botocore hooks on the client factory's session for one test.

    Clients made after registration copy them: the per-request clients that act in the
    customer's account always are.
    """
    from agent_builder import clients

    registered: list[tuple[str, Callable[..., Any], str]] = []

    def register(event: str, hook: Callable[..., Any]) -> None:
        unique = f"test-hook-{len(registered)}"
        clients._session().events.register(event, hook, unique_id=unique)
        registered.append((event, hook, unique))

    yield register
    for event, hook, unique in registered:
        clients._session().events.unregister(event, hook, unique_id=unique)


@pytest.fixture
def org(api: ApiCall) -> dict[str, Any]:
    """Tier 3: Acme, with ADMIN (admin), DEV (developer), VIEWER (viewer) of org_support."""
    from tests.runtime.org_support import DEV, VIEWER, found, join

    organization = found(api)
    join(api, DEV, "developer")
    join(api, VIEWER, "viewer")
    return organization
