"""Launching the exported onboarding template in a second AWS account, emulated by moto.

moto keeps one state per account and picks the account from the caller's credentials: keys
from `sts.assume_role` into `arn:aws:iam::111111111111:role/...` act in account 111111111111,
while the default fake keys act in 123456789012. Registration is off here
(`RegistrationTopicArn=""`): an SNS-backed custom resource would wait for the platform's reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_mode.assembly import cdk_context
from stacks.config import PlatformConfig
from stacks.onboarding_templates import render_customer_template

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_ACCOUNT = "111111111111"
DEFAULT_ACCOUNT = "123456789012"
PLATFORM_ACCOUNT = "222222222222"
REGION = "eu-west-1"
STACK_NAME = "agent-builder-onboarding"
EXTERNAL_ID = "ext-7Jq2mXo9Lr4Vb8Nc1Zs6Yt3Wd5"


@pytest.fixture(scope="module")
def template_body() -> str:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return render_customer_template(PlatformConfig.from_context(context.get))


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def customer() -> Iterator[boto3.Session]:
    """A session whose calls land in the customer's account (not moto's default one)."""
    with mock_aws():
        credentials = boto3.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/customer-admin",
            RoleSessionName="onboarding-test",
        )["Credentials"]
        yield boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )


@dataclass
class Launched:
    session: boto3.Session
    outputs: dict[str, str]
    resources: list[dict[str, Any]]


def launch(session: boto3.Session, template_body: str, **parameters: str) -> Launched:
    cloudformation = session.client("cloudformation")
    values = {
        "ExternalId": EXTERNAL_ID,
        "PlatformAccountId": PLATFORM_ACCOUNT,
        "RegistrationTopicArn": "",
    } | parameters
    cloudformation.create_stack(
        StackName=STACK_NAME,
        TemplateBody=template_body,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    (stack,) = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return Launched(
        session=session,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]},
        resources=cloudformation.list_stack_resources(StackName=STACK_NAME)[
            "StackResourceSummaries"
        ],
    )


@pytest.fixture
def launched(customer: boto3.Session, template_body: str) -> Launched:
    return launch(customer, template_body)


def test_the_assumed_role_credentials_act_in_the_customer_account(
    customer: boto3.Session,
) -> None:
    assert customer.client("sts").get_caller_identity()["Account"] == CUSTOMER_ACCOUNT
    assert boto3.client("sts").get_caller_identity()["Account"] == DEFAULT_ACCOUNT


def test_launch_creates_the_deployer_role_cluster_and_network_in_the_customer_account(
    launched: Launched,
) -> None:
    outputs = launched.outputs
    assert outputs["RoleArn"] == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/agent-builder-deployer"
    assert outputs["ClusterArn"] == (
        f"arn:aws:ecs:{REGION}:{CUSTOMER_ACCOUNT}:cluster/agent-builder-cluster"
    )
    role = launched.session.client("iam").get_role(RoleName="agent-builder-deployer")["Role"]
    assert role["Arn"] == outputs["RoleArn"]
    (statement, _) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {
        "AWS": f"arn:aws:iam::{PLATFORM_ACCOUNT}:role/agent-builder-launcher"
    }
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}

    (cluster,) = launched.session.client("ecs").describe_clusters(clusters=[outputs["ClusterArn"]])[
        "clusters"
    ]
    assert cluster["status"] == "ACTIVE"

    ec2 = launched.session.client("ec2")
    subnet_ids = outputs["SubnetIds"].split(",")
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    assert len(subnets) == 2
    assert all(s["OwnerId"] == CUSTOMER_ACCOUNT and s["MapPublicIpOnLaunch"] for s in subnets)
    (vpc_id,) = {s["VpcId"] for s in subnets}
    (group,) = ec2.describe_security_groups(GroupIds=[outputs["SecurityGroupId"]])["SecurityGroups"]
    assert group["VpcId"] == vpc_id
    assert group["IpPermissions"] == []
    assert launched.session.client("logs").describe_log_groups(
        logGroupNamePrefix="/agent-builder/agent-runs"
    )["logGroups"]


def test_the_platform_account_itself_gets_nothing(launched: Launched) -> None:
    # Moto's default account stands in for "wherever else": the stack wrote only into 1111...
    with pytest.raises(ClientError, match="NoSuchEntity"):
        boto3.client("iam").get_role(RoleName="agent-builder-deployer")
    assert boto3.client("ecs").list_clusters()["clusterArns"] == []


def test_outputs_describe_the_connection_for_a_pasted_role_arn(launched: Launched) -> None:
    outputs = launched.outputs
    # The External ID is NoEcho and never an output (anyone who can read the stack would
    # learn it); the pasted connection takes it from the onboarding answer.
    assert "ExternalId" not in outputs
    assert EXTERNAL_ID not in json.dumps(outputs)
    assert outputs["TemplateVersion"] == cdk_context()["templateVersion"]
    assert outputs["ExecutionRoleArn"].endswith(":role/agent-builder-task-execution")
    assert outputs["TaskRoleArn"].endswith(":role/agent-builder-agent-task")
    assert outputs["LogGroupName"] == "/agent-builder/agent-runs"


def test_registration_off_creates_no_registration_resource(launched: Launched) -> None:
    types = {r["ResourceType"] for r in launched.resources}
    assert "Custom::AgentBuilderRegistration" not in types
    assert "AWS::IAM::Role" in types


def test_an_existing_vpc_is_used_instead_of_a_new_one(
    customer: boto3.Session, template_body: str
) -> None:
    ec2 = customer.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    vpcs_before = len(ec2.describe_vpcs()["Vpcs"])

    launched = launch(customer, template_body, VpcId=vpc_id, SubnetIds=",".join(subnet_ids))

    assert len(ec2.describe_vpcs()["Vpcs"]) == vpcs_before
    assert launched.outputs["SubnetIds"] == ",".join(subnet_ids)
    (group,) = ec2.describe_security_groups(GroupIds=[launched.outputs["SecurityGroupId"]])[
        "SecurityGroups"
    ]
    assert group["VpcId"] == vpc_id
    assert "AWS::EC2::VPC" not in {r["ResourceType"] for r in launched.resources}


def test_deleting_the_stack_removes_what_it_created(launched: Launched) -> None:
    session = launched.session
    vpc_id = session.client("ec2").describe_security_groups(
        GroupIds=[launched.outputs["SecurityGroupId"]]
    )["SecurityGroups"][0]["VpcId"]

    session.client("cloudformation").delete_stack(StackName=STACK_NAME)

    iam = session.client("iam")
    for role in (
        "agent-builder-deployer",
        "agent-builder-task-execution",
        "agent-builder-agent-task",
    ):
        with pytest.raises(ClientError, match="NoSuchEntity"):
            iam.get_role(RoleName=role)
    clusters = session.client("ecs").describe_clusters(clusters=[launched.outputs["ClusterArn"]])
    assert [c["status"] for c in clusters["clusters"]] in ([], ["INACTIVE"])
    assert (
        session.client("ec2").describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "Vpcs"
        ]
        == []
    )
    assert (
        session.client("logs").describe_log_groups(logGroupNamePrefix="/agent-builder/")[
            "logGroups"
        ]
        == []
    )


def deployer_policies(session: boto3.Session) -> dict[str, list[dict[str, Any]]]:
    """The deployer role's policies as IAM holds them: name -> statements."""
    iam = session.client("iam")
    policies = {}
    for name in iam.list_role_policies(RoleName="agent-builder-deployer")["PolicyNames"]:
        document = iam.get_role_policy(RoleName="agent-builder-deployer", PolicyName=name)[
            "PolicyDocument"
        ]
        policies[name] = (json.loads(document) if isinstance(document, str) else document)[
            "Statement"
        ]
    return policies


def test_without_allowed_regions_the_deployer_has_no_region_limit(launched: Launched) -> None:
    policies = deployer_policies(launched.session)

    assert list(policies) == ["agent-builder-deployer-permissions"]
    statements = policies["agent-builder-deployer-permissions"]
    assert {s["Effect"] for s in statements} == {"Allow"}
    assert "aws:RequestedRegion" not in json.dumps(statements)


def test_allowed_regions_deny_the_deployer_every_other_region(
    customer: boto3.Session, template_body: str
) -> None:
    launched = launch(customer, template_body, AllowedRegions="eu-west-1,eu-central-1")

    policies = deployer_policies(launched.session)
    assert set(policies) == {
        "agent-builder-deployer-permissions",
        "agent-builder-deployer-allowed-regions",
    }
    (deny,) = policies["agent-builder-deployer-allowed-regions"]
    assert deny["Sid"] == "NothingOutsideAllowedRegions"
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}
    }
    assert "ecs:RunTask" in deny["Action"]
    assert "iam:PassRole" not in deny["Action"]
    # The permissions themselves are the same as without the parameter.
    assert {s["Effect"] for s in policies["agent-builder-deployer-permissions"]} == {"Allow"}
