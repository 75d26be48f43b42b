"""Tier 3: an organisation's accounts, onboarded with one External ID and one
registration token, registered through the same registration function as Tier 2."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from agent_builder import wiring
from agent_builder.errors import (
    AccountAlreadyConnected,
    InvalidInput,
    InvalidRegion,
    OrgAccountNotFound,
)
from agent_builder.services.org_accounts import OrgAccountService
from agent_builder.services.registration import NOT_VERIFIED_REASON
from tests.runtime import test_registration
from tests.runtime.sso_support import ORG, OTHER_ORG
from tests.runtime.support import (
    CUSTOMER_REGION,
    ORGANIZATION_TEMPLATE_URL,
    PREFIX,
    REGION,
    TEMPLATE_URL,
    Customer,
    Platform,
)
from tests.runtime.test_registration import (
    CloudFormation,
    Hooks,
    deliver,
    request,
    stack_status,
)

# The registration tests' stand-in for CloudFormation's response URL, as a fixture here.
cloudformation = test_registration.cloudformation
ADMIN = "6f1d2c3b-0000-4000-8000-0000000ad111"
SECOND_ACCOUNT = "333333333333"


@pytest.fixture
def service(platform: Platform) -> OrgAccountService:
    return wiring.enterprise_services().org_accounts


def _params(answer: dict[str, Any]) -> dict[str, str]:
    query = urlsplit(answer["launchStackUrl"]).fragment.split("?", 1)[1]
    return {key: values[0] for key, values in parse_qs(query).items()}


def _org_request(
    kind: str, customer: Customer, answer: dict[str, Any], **props: Any
) -> dict[str, Any]:
    message = request(
        kind,
        customer,
        answer["externalId"],
        RegistrationToken=_params(answer)["param_RegistrationToken"],
        **props,
    )
    return message


def _register(service: OrgAccountService, *customers: Customer) -> dict[str, Any]:
    """Onboard the organisation, then each account's StackSet stack registers."""
    answer = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    for customer in customers:
        deliver(_org_request("Create", customer, answer))
    return answer


@pytest.fixture
def second_customer(customer: Customer) -> Customer:
    """Another account of the organisation, with what the StackSet's stack creates."""
    sts = boto3.client("sts", region_name=REGION)
    credentials = dict(
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{SECOND_ACCOUNT}:role/{PREFIX}-deployer", RoleSessionName="setup"
        )["Credentials"]
    )
    other = Customer(
        account_id=SECOND_ACCOUNT,
        region=CUSTOMER_REGION,
        role_arn=f"arn:aws:iam::{SECOND_ACCOUNT}:role/{PREFIX}-deployer",
        vpc_id="",
        subnet_ids=[],
        security_group_id="",
        cluster_arn="",
        log_group=f"/{PREFIX}/agent-runs",
        credentials=credentials,
    )
    ec2 = other.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    tags = [{"Key": "aws-cdk:subnet-type", "Value": "Public"}, {"Key": "Project", "Value": PREFIX}]
    other.vpc_id = vpc
    other.subnet_ids = [
        ec2.create_subnet(
            VpcId=vpc,
            CidrBlock="10.2.0.0/24",
            TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
        )["Subnet"]["SubnetId"]
    ]
    other.security_group_id = ec2.create_security_group(
        GroupName=f"{PREFIX}-agent-tasks", Description="egress only", VpcId=vpc
    )["GroupId"]
    other.cluster_arn = other.client("ecs").create_cluster(clusterName=f"{PREFIX}-cluster")[
        "cluster"
    ]["clusterArn"]
    logs = other.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=other.log_group)  # moto may keep it between cases
    return other


def test_onboarding_gives_one_external_id_a_stackset_link_and_the_template_urls(
    service: OrgAccountService,
) -> None:
    first = service.onboarding(ORG, ADMIN, region=REGION)
    again = service.onboarding(ORG, ADMIN, region=REGION)
    assert first["externalId"] == again["externalId"]
    assert len(first["externalId"]) == 43
    assert first["stackSetTemplateUrl"] == TEMPLATE_URL
    assert first["organizationTemplateUrl"] == ORGANIZATION_TEMPLATE_URL
    params = _params(first)
    assert urlsplit(first["launchStackUrl"]).fragment.startswith("/stacks/quickcreate")
    assert params["templateURL"] == ORGANIZATION_TEMPLATE_URL
    assert params["param_DeploymentRegion"] == REGION
    assert params["param_ExternalId"] == first["externalId"]
    assert params["param_RegistrationTopicArn"] == "default"
    assert len(params["param_RegistrationToken"]) == 43
    # A fresh token each answer; the newest is the one that registers.
    assert params["param_RegistrationToken"] != _params(again)["param_RegistrationToken"]


def test_the_link_prefills_the_organisations_allowed_regions_for_the_template(
    service: OrgAccountService,
) -> None:
    limited = service.onboarding(
        ORG, ADMIN, region=CUSTOMER_REGION, allowed_regions=["eu-west-1", "eu-central-1"]
    )
    unlimited = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)

    # The template's AllowedRegions (CommaDelimitedList): each account's deployer role is
    # denied every other region in IAM. No limit: the parameter keeps its empty default.
    assert _params(limited)["param_AllowedRegions"] == "eu-west-1,eu-central-1"
    assert "param_AllowedRegions" not in _params(unlimited)


def test_an_allowed_region_that_is_no_region_issues_no_link(
    service: OrgAccountService, platform: Platform
) -> None:
    with pytest.raises(InvalidRegion, match="mars-north-1"):
        service.onboarding(ORG, ADMIN, region=REGION, allowed_regions=["eu-west-1", "mars-north-1"])

    assert platform.table_items("ACCOUNTS_TABLE") == []


def test_the_token_is_stored_only_as_its_hash(
    service: OrgAccountService, platform: Platform
) -> None:
    answer = service.onboarding(ORG, ADMIN, region=REGION)
    token = _params(answer)["param_RegistrationToken"]
    assert token not in repr(platform.table_items("ACCOUNTS_TABLE"))


def test_each_organisation_has_its_own_external_id(service: OrgAccountService) -> None:
    assert (
        service.onboarding(ORG, ADMIN)["externalId"]
        != service.onboarding(OTHER_ORG, ADMIN)["externalId"]
    )


def test_many_accounts_register_with_the_one_token(
    service: OrgAccountService,
    customer: Customer,
    second_customer: Customer,
    cloudformation: CloudFormation,
) -> None:
    _register(service, customer, second_customer)
    assert [sent.body["Status"] for sent in cloudformation.sent] == ["SUCCESS", "SUCCESS"]
    accounts = service.accounts(ORG)
    assert [a["accountId"] for a in accounts] == sorted([customer.account_id, SECOND_ACCOUNT])
    assert all(a["status"] == "connected" and a["templateVersion"] == "1.1.0" for a in accounts)
    # Deployments pick one: the only one, or the one named.
    with pytest.raises(InvalidInput, match="choose accountId"):
        service.account(ORG, None)
    assert service.account(ORG, SECOND_ACCOUNT)["roleArn"] == second_customer.role_arn
    # Rotating the External ID would orphan the connected roles: refused.
    with pytest.raises(AccountAlreadyConnected):
        service.onboarding(ORG, ADMIN, rotate_external_id=True)


def test_a_wrong_or_replaced_token_registers_nothing(
    service: OrgAccountService, customer: Customer, cloudformation: CloudFormation
) -> None:
    old = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)  # replaces the token
    deliver(_org_request("Create", customer, old))
    deliver(request("Create", customer, old["externalId"], RegistrationToken="x" * 43))
    assert [sent.body["Status"] for sent in cloudformation.sent] == ["FAILED", "FAILED"]
    assert all(sent.body["Reason"] == NOT_VERIFIED_REASON for sent in cloudformation.sent)
    assert service.accounts(ORG) == []


def test_the_same_create_again_changes_nothing_and_another_stack_cannot_take_the_account(
    service: OrgAccountService, customer: Customer, cloudformation: CloudFormation
) -> None:
    answer = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    deliver(_org_request("Create", customer, answer))
    deliver(_org_request("Create", customer, answer))
    other_stack = _org_request("Create", customer, answer)
    other_stack["StackId"] = other_stack["StackId"].replace("000000000001", "000000000002")
    deliver(other_stack)
    assert [sent.body["Status"] for sent in cloudformation.sent] == ["SUCCESS", "SUCCESS", "FAILED"]
    (account,) = service.accounts(ORG)
    assert account["accountId"] == customer.account_id


def test_stack_deletion_disconnects_that_account_only(
    service: OrgAccountService,
    customer: Customer,
    second_customer: Customer,
    cloudformation: CloudFormation,
    aws_hooks: Hooks,
) -> None:
    answer = _register(service, customer, second_customer)
    stack_id = _org_request("Delete", second_customer, answer)["StackId"]
    aws_hooks(
        "before-call.cloudformation.DescribeStacks", stack_status("DELETE_IN_PROGRESS", stack_id)
    )
    deliver(_org_request("Delete", second_customer, answer))
    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert [a["accountId"] for a in service.accounts(ORG)] == [customer.account_id]


def test_a_delete_the_stack_does_not_confirm_disconnects_nothing(
    service: OrgAccountService,
    customer: Customer,
    cloudformation: CloudFormation,
    aws_hooks: Hooks,
) -> None:
    answer = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    deliver(_org_request("Create", customer, answer))
    aws_hooks(
        "before-call.cloudformation.DescribeStacks", stack_status("UPDATE_ROLLBACK_IN_PROGRESS")
    )
    deliver(_org_request("Delete", customer, answer))
    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert len(service.accounts(ORG)) == 1


def test_an_admin_disconnects_one_account(
    service: OrgAccountService,
    customer: Customer,
    cloudformation: CloudFormation,
) -> None:
    answer = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    deliver(_org_request("Create", customer, answer))
    service.disconnect(ORG, ADMIN, customer.account_id)
    assert service.accounts(ORG) == []
    with pytest.raises(OrgAccountNotFound):
        service.disconnect(ORG, ADMIN, customer.account_id)
    with pytest.raises(OrgAccountNotFound):
        service.account(ORG, None)


def test_another_organisations_accounts_are_not_found(
    service: OrgAccountService, customer: Customer, cloudformation: CloudFormation
) -> None:
    answer = service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    deliver(_org_request("Create", customer, answer))
    assert service.accounts(OTHER_ORG) == []
    with pytest.raises(OrgAccountNotFound):
        service.account(OTHER_ORG, customer.account_id)
    with pytest.raises(OrgAccountNotFound):
        service.disconnect(OTHER_ORG, ADMIN, customer.account_id)


def test_a_users_registration_still_works_beside_organisations(
    service: OrgAccountService, customer: Customer, cloudformation: CloudFormation, api: Any
) -> None:
    from tests.runtime.test_registration import link_token

    service.onboarding(ORG, ADMIN, region=CUSTOMER_REGION)
    answer = api("POST", "/aws-account/onboarding", body={}).body
    deliver(request("Create", customer, answer["externalId"], RegistrationToken=link_token(answer)))
    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert api("GET", "/aws-account").body["accountId"] == customer.account_id
    assert service.accounts(ORG) == []
