"""Runtime fixtures: moto for every AWS service the functions use (Stubber, in the
tests, where moto cannot produce a case: RunTask `failures`, a Scheduler outage).

Tables come from ONE function, create_tables(), which mirrors lambda_src/CONTRACT.md
exactly (it is meant to be switched to the synthesized template's definitions).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.backends import get_backend

from agent_builder import wiring
from tests.runtime.support import (
    AGENT,
    BUCKET,
    CUSTOMER_ACCOUNT,
    CUSTOMER_REGION,
    CUSTOMER_ROLE_ARN,
    LAUNCHES_PER_MINUTE,
    LOG_GROUP,
    MODELS,
    PREFIX,
    REGION,
    SCHEDULE_GROUP,
    TABLES,
    TESTS_PER_MONTH,
    TIER2_ENV,
    Answer,
    ApiCall,
    Customer,
    Platform,
    http_event,
    lambda_context,
)

RESET_PER_TEST = ("dynamodb", "ecs", "s3", "logs", "scheduler")


def create_tables(dynamodb: Any) -> None:
    """The tables of CONTRACT.md: keys, GSIs byUser and byExternalId, TTLs, on-demand."""
    s = "S"
    definitions: list[dict[str, Any]] = [
        {"TableName": TABLES["PROFILES_TABLE"], "keys": [("userId", s)]},
        {"TableName": TABLES["AGENTS_TABLE"], "keys": [("userId", s), ("agentId", s)]},
        {
            "TableName": TABLES["RUNS_TABLE"],
            "keys": [("runId", s)],
            "extra": [("userId", s), ("createdAt", s)],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "byUser",
                    "KeySchema": [
                        {"AttributeName": "userId", "KeyType": "HASH"},
                        {"AttributeName": "createdAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
        {"TableName": TABLES["USAGE_TABLE"], "keys": [("userId", s), ("period", s)]},
        {
            "TableName": TABLES["ACCOUNTS_TABLE"],
            "keys": [("userId", s)],
            "extra": [("externalId", s)],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "byExternalId",
                    "KeySchema": [{"AttributeName": "externalId", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
        {"TableName": TABLES["AUDIT_TABLE"], "keys": [("scope", s), ("eventId", s)]},
    ]
    for definition in definitions:
        keys = definition.pop("keys")
        extra = definition.pop("extra", [])
        dynamodb.create_table(
            KeySchema=[
                {"AttributeName": name, "KeyType": "HASH" if i == 0 else "RANGE"}
                for i, (name, _) in enumerate(keys)
            ],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": kind} for name, kind in keys + extra
            ],
            BillingMode="PAY_PER_REQUEST",
            **definition,
        )
    for table, ttl in (
        (TABLES["RUNS_TABLE"], "expiresAt"),
        (TABLES["USAGE_TABLE"], "expiresAt"),
        (TABLES["AUDIT_TABLE"], "expiresAt"),
    ):
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )


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
        "SCHEDULE_GROUP_NAME": SCHEDULE_GROUP,
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/agent-builder-stopper",
        "RUN_RETENTION_DAYS": "30",
        "POWERTOOLS_SERVICE_NAME": "agent-builder-test",
        **TIER2_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Same fake credentials and region in every case: the clients can stay.
    wiring.reset(keep_clients=True)
    yield Platform(cluster, task_definition, subnet, group, env)
    wiring.reset(keep_clients=True)


@pytest.fixture
def api(platform: Platform) -> ApiCall:
    from handlers import api as api_module

    def call(method: str, path: str, **kwargs: Any) -> Answer:
        result = api_module.handler(http_event(method, path, **kwargs), lambda_context())
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
