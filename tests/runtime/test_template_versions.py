"""Template versions a customer can act on: what their stack runs, what updating changes.

A registration carries its TemplateVersion (tests/runtime/test_registration.py); a pasted
role's version is read from its onboarding stack's TemplateVersion output through the
role. GET /aws-account then says the latest version and, when outdated, the console's
update-stack link and the changes computed from the two released templates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent_builder import wiring
from tests.runtime.support import (
    CUSTOMER_ACCOUNT,
    CUSTOMER_REGION,
    PREFIX,
    REGION,
    TEMPLATE_URL,
    TEMPLATE_VERSION,
    USER,
    ApiCall,
    Customer,
    Platform,
    aws_error,
    paste_connect,
)

Hooks = Any
STACK_NAME = f"{PREFIX}-onboarding"
URL_1_1_0 = f"https://{PREFIX}-templates.s3.{REGION}.amazonaws.com/customer-onboarding/1.1.0.yaml"
# What dist/releases/ says 1.1.0 changed over 1.0.0: the runner streams its answer.
CHANGES_1_0_0_TO_1_1_0 = {
    "fromVersion": "1.0.0",
    "toVersion": "1.1.0",
    "resources": {"added": [], "removed": []},
    "permissions": [
        {
            "role": "AgentsTaskRoleBA3BBC07",
            "roleName": "<ResourcePrefix>-agent-task",
            "change": "changed",
            "actionsAdded": ["bedrock:InvokeModelWithResponseStream"],
            "actionsRemoved": [],
            "managedPoliciesAdded": [],
            "managedPoliciesRemoved": [],
            "statementsRescoped": [],
            "trustPolicyChanged": False,
        }
    ],
    "parameters": {"added": [], "removed": []},
}


def launch_stack(customer: Customer, version: str, *, role_arn: str | None = None) -> str:
    """An onboarding stack in the customer's account with the outputs the template has."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "RoleArn": {"Value": role_arn or customer.role_arn},
            "TemplateVersion": {"Value": version},
        },
    }
    answer = customer.client("cloudformation").create_stack(
        StackName=STACK_NAME, TemplateBody=json.dumps(template)
    )
    return str(answer["StackId"])


def stored(platform: Platform) -> dict[str, Any]:
    [item] = [i for i in platform.table_items("ACCOUNTS_TABLE") if i["userId"] == USER]
    return item


def update_link(url: str) -> tuple[Any, str, dict[str, list[str]]]:
    parts = urlsplit(url)
    route, _, query = parts.fragment.partition("?")
    return parts, route, parse_qs(query)


@pytest.fixture
def platform_at_1_1_0(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """The platform publishing the released 1.1.0 template."""
    monkeypatch.setenv("TEMPLATE_VERSION", "1.1.0")
    monkeypatch.setenv("TEMPLATE_URL", URL_1_1_0)
    wiring.reset(keep_clients=True)
    yield platform
    wiring.reset(keep_clients=True)


# ---- a pasted role's version comes from its stack ------------------------------------------


def test_a_pasted_role_is_stored_with_its_stacks_template_version(
    api: ApiCall, customer: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    stack_id = launch_stack(customer, "1.0.0")
    calls: list[dict[str, Any]] = []
    aws_hooks(
        "provide-client-params.cloudformation.DescribeStacks",
        lambda params, **_: calls.append(dict(params)),
    )

    answer = paste_connect(api, customer)

    assert answer.status == 200, answer.body
    assert calls == [{"StackName": STACK_NAME}]
    item = stored(platform)
    assert item["templateVersion"] == "1.0.0"
    assert item["stackId"] == stack_id
    account = api("GET", "/aws-account").body
    assert account["templateVersion"] == "1.0.0"
    assert account["templateOutdated"] is True  # the platform is at 1.2.0


@pytest.mark.parametrize("error", ["AccessDenied", "ValidationError", "Throttling"])
def test_a_stack_the_role_cannot_read_connects_with_an_unknown_version(
    api: ApiCall, customer: Customer, platform: Platform, aws_hooks: Hooks, error: str
) -> None:
    # Templates before the deployer could describe its own stack answer AccessDenied; a
    # renamed stack is a ValidationError ("does not exist").
    launch_stack(customer, "1.0.0")
    aws_hooks("before-call.cloudformation.DescribeStacks", aws_error(error, status=400))

    answer = paste_connect(api, customer)

    assert answer.status == 200, answer.body
    assert answer.body["status"] == "connected"
    assert stored(platform)["templateVersion"] == "unknown"
    account = api("GET", "/aws-account").body
    assert account["templateVersion"] == "unknown"
    assert account["templateOutdated"] is None
    assert account["updateUrl"] is None
    assert account["changes"] is None


def test_without_an_onboarding_stack_the_version_is_unknown(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    assert paste_connect(api, customer).status == 200

    assert stored(platform)["templateVersion"] == "unknown"
    assert "stackId" not in stored(platform)


def test_a_stack_of_another_role_is_not_believed(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    launch_stack(customer, "9.9.9", role_arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/someone-else")

    assert paste_connect(api, customer).status == 200

    assert stored(platform)["templateVersion"] == "unknown"


def test_a_malformed_version_output_is_not_stored(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    launch_stack(customer, "latest; drop table")

    assert paste_connect(api, customer).status == 200

    assert stored(platform)["templateVersion"] == "unknown"


# ---- GET /aws-account: latest version, update link, changes ---------------------------------


def test_a_connection_on_1_0_0_gets_the_update_link_and_what_1_1_0_adds(
    api: ApiCall, customer: Customer, platform_at_1_1_0: Platform
) -> None:
    stack_id = launch_stack(customer, "1.0.0")
    paste_connect(api, customer)

    account = api("GET", "/aws-account").body

    assert account["templateVersion"] == "1.0.0"
    assert account["latestTemplateVersion"] == "1.1.0"
    assert account["templateOutdated"] is True
    parts, route, query = update_link(account["updateUrl"])
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        f"{CUSTOMER_REGION}.console.aws.amazon.com",
        "/cloudformation/home",
    )
    assert parse_qs(parts.query) == {"region": [CUSTOMER_REGION]}
    assert route == "/stacks/update/template"
    assert query == {"stackId": [stack_id], "templateURL": [URL_1_1_0]}
    assert "https%3A%2F%2F" in account["updateUrl"]  # encoded, not raw
    # 1.1.0 was released before releases carried their own words: no notes.
    assert account["changes"] == {**CHANGES_1_0_0_TO_1_1_0, "notes": []}


def test_a_current_connection_gets_no_update_link(
    api: ApiCall, customer: Customer, platform_at_1_1_0: Platform
) -> None:
    launch_stack(customer, "1.1.0")
    paste_connect(api, customer)

    account = api("GET", "/aws-account").body

    assert account["templateVersion"] == "1.1.0"
    assert account["latestTemplateVersion"] == "1.1.0"
    assert account["templateOutdated"] is False
    assert account["updateUrl"] is None
    assert account["changes"] is None


def test_an_outdated_version_outside_the_archive_gets_a_link_but_no_changes(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    # A stack of a version dist/releases/ does not hold (never released from this repo).
    stack_id = launch_stack(customer, "0.9.0")
    paste_connect(api, customer)

    account = api("GET", "/aws-account").body

    assert account["latestTemplateVersion"] == TEMPLATE_VERSION
    _, route, query = update_link(account["updateUrl"])
    assert route == "/stacks/update/template"
    assert query == {"stackId": [stack_id], "templateURL": [TEMPLATE_URL]}
    assert account["changes"] is None


def test_a_connection_stored_without_a_stack_id_links_to_the_stack_by_name(
    api: ApiCall, customer: Customer, platform_at_1_1_0: Platform
) -> None:
    launch_stack(customer, "1.0.0")
    paste_connect(api, customer)
    platform_at_1_1_0.client("dynamodb").update_item(
        TableName=platform_at_1_1_0.env["ACCOUNTS_TABLE"],
        Key={"userId": {"S": USER}},
        UpdateExpression="REMOVE stackId",
    )

    _, _, query = update_link(api("GET", "/aws-account").body["updateUrl"])

    assert query["stackId"] == [STACK_NAME]


def test_a_connection_stored_before_versions_were_read_says_unknown(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    paste_connect(api, customer)
    platform.client("dynamodb").update_item(
        TableName=platform.env["ACCOUNTS_TABLE"],
        Key={"userId": {"S": USER}},
        UpdateExpression="REMOVE templateVersion",
    )

    account = api("GET", "/aws-account").body

    assert account["templateVersion"] == "unknown"
    assert account["updateUrl"] is None
