"""Tier 2: POST /aws-account/onboarding, PUT/GET/DELETE /aws-account, validation, tiers, audit."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.runtime.support import (
    CUSTOMER_ACCOUNT,
    CUSTOMER_REGION,
    CUSTOMER_ROLE_ARN,
    LAUNCHER_ROLE_ARN,
    PLATFORM_ACCOUNT,
    PREFIX,
    TEMPLATE_URL,
    TEMPLATE_VERSION,
    TOPIC_ARN,
    USER,
    ApiCall,
    Customer,
    Platform,
    audit_records,
    aws_error,
    onboard,
    paste_connect,
    set_tier,
    tier_of,
)

Hooks = Any


def quick_create(url: str) -> tuple[Any, dict[str, str]]:
    parts = urlsplit(url)
    route, _, query = parts.fragment.partition("?")
    assert route == "/stacks/quickcreate"
    params = {key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()}
    return parts, params


# ---- onboarding -------------------------------------------------------------------------


def test_onboarding_gives_a_long_random_external_id_sts_accepts(api: ApiCall) -> None:
    answer = onboard(api)

    assert answer.status == 200
    external_id = answer.body["externalId"]
    assert len(external_id) >= 32
    assert re.fullmatch(r"[\w+=,.@:/-]+", external_id)


def test_onboarding_keeps_the_same_external_id_until_rotated(api: ApiCall) -> None:
    first = onboard(api).body["externalId"]
    again = api("POST", "/aws-account/onboarding").body["externalId"]
    rotated = onboard(api, rotate=True).body["externalId"]

    assert again == first
    assert rotated != first
    assert onboard(api).body["externalId"] == rotated


def test_users_get_different_external_ids(api: ApiCall) -> None:
    mine = onboard(api).body["externalId"]
    theirs = api("POST", "/aws-account/onboarding", body={}, user="someone-else").body["externalId"]

    assert mine != theirs


def test_onboarding_stores_the_external_id_as_pending(api: ApiCall, platform: Platform) -> None:
    external_id = onboard(api).body["externalId"]

    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item == {
        "userId": USER,
        "externalId": external_id,
        "status": "pending",
        "createdAt": item["createdAt"],
        # The Launch Stack link's registration token: only its SHA-256, and its expiry.
        "registrationTokenHash": item["registrationTokenHash"],
        "registrationTokenExpiresAt": item["registrationTokenExpiresAt"],
    }
    assert re.fullmatch(r"[0-9a-f]{64}", item["registrationTokenHash"])


def test_launch_stack_url_prefills_every_parameter_for_the_platform_region(api: ApiCall) -> None:
    answer = onboard(api)

    parts, params = quick_create(answer.body["launchStackUrl"])
    assert parts.scheme == "https"
    assert parts.netloc == "us-east-1.console.aws.amazon.com"
    assert parts.path == "/cloudformation/home"
    assert parse_qs(parts.query) == {"region": ["us-east-1"]}
    assert params == {
        "templateURL": TEMPLATE_URL,
        "stackName": f"{PREFIX}-onboarding",
        "param_ExternalId": answer.body["externalId"],
        "param_RegistrationToken": params["param_RegistrationToken"],
        "param_PlatformAccountId": PLATFORM_ACCOUNT,
        "param_RegistrationTopicArn": TOPIC_ARN,
    }
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["param_RegistrationToken"])
    assert params["param_RegistrationToken"] not in json.dumps(
        {k: v for k, v in answer.body.items() if k != "launchStackUrl"}
    )
    assert answer.body["templateUrl"] == TEMPLATE_URL
    assert answer.body["registration"] == "automatic"


def test_launch_stack_url_encodes_its_parameters(api: ApiCall) -> None:
    url = onboard(api).body["launchStackUrl"]

    query = url.split("#/stacks/quickcreate?", 1)[1]
    assert "https%3A%2F%2F" in query  # the template URL is encoded, not raw
    assert "arn%3Aaws%3Asns" in query
    assert " " not in url


def test_launch_stack_url_for_another_region_skips_registration(api: ApiCall) -> None:
    answer = onboard(api, region="eu-west-1")

    parts, params = quick_create(answer.body["launchStackUrl"])
    assert parts.netloc == "eu-west-1.console.aws.amazon.com"
    assert parse_qs(parts.query) == {"region": ["eu-west-1"]}
    # CloudFormation sends a custom resource's messages only to a topic in the stack's
    # region: there the stack skips registration and the RoleArn is pasted.
    assert params["param_RegistrationTopicArn"] == ""
    assert answer.body["registration"] == "manual"


@pytest.mark.parametrize("region", ["mars-north-1", "us-east-7", "US-EAST-1", "cn-north-1"])
def test_onboarding_refuses_a_region_that_does_not_exist(
    api: ApiCall, platform: Platform, region: str
) -> None:
    before = platform.snapshot()

    answer = onboard(api, region=region)

    assert answer.status == 400
    assert answer.error_code == "INVALID_REGION"
    assert platform.snapshot() == before


def test_rotation_is_refused_while_connected(api: ApiCall, customer: Customer) -> None:
    external_id = paste_connect(api, customer).body and onboard(api).body["externalId"]

    answer = onboard(api, rotate=True)

    assert answer.status == 409
    assert answer.error_code == "ACCOUNT_ALREADY_CONNECTED"
    assert onboard(api).body["externalId"] == external_id


def test_onboarding_and_rotation_are_audited_without_the_external_id(
    api: ApiCall, platform: Platform
) -> None:
    first = onboard(api).body["externalId"]
    second = onboard(api, rotate=True).body["externalId"]

    records = audit_records(platform)
    assert [r["action"] for r in records] == ["account.onboarding", "account.rotate_external_id"]
    assert all(r["scope"] == f"user#{USER}" and r["result"] == "success" for r in records)
    assert first not in json.dumps(records) and second not in json.dumps(records)


# ---- PUT /aws-account: connecting by pasting the role ARN ---------------------------------


def test_pasting_the_role_arn_connects_the_account(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    answer = paste_connect(api, customer)

    assert answer.status == 200, answer.body
    assert answer.body["status"] == "connected"
    assert answer.body["accountId"] == CUSTOMER_ACCOUNT
    assert answer.body["roleArn"] == CUSTOMER_ROLE_ARN
    assert answer.body["region"] == CUSTOMER_REGION
    assert answer.body["clusterArn"] == customer.cluster_arn
    # Found the way the template names and tags them.
    assert answer.body["subnetIds"] == customer.subnet_ids
    assert answer.body["securityGroupId"] == customer.security_group_id
    assert answer.body["connectedVia"] == "api"
    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item["status"] == "connected" and item["accountId"] == CUSTOMER_ACCOUNT


def test_connecting_assumes_the_role_with_the_external_id_and_the_user_as_source_identity(
    api: ApiCall, customer: Customer, aws_hooks: Hooks
) -> None:
    requests: list[dict[str, Any]] = []
    aws_hooks("provide-client-params.sts.AssumeRole", lambda params, **_: requests.append(params))
    external_id = onboard(api).body["externalId"]

    paste_connect(api, customer, externalId=external_id)

    [customer_hop] = [r for r in requests if r["RoleArn"] == CUSTOMER_ROLE_ARN]
    assert customer_hop["ExternalId"] == external_id
    assert customer_hop["SourceIdentity"] == USER
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", customer_hop["RoleSessionName"])
    # The launcher hop (if this test made it) names no user: its session serves everyone.
    for launcher_hop in [r for r in requests if r["RoleArn"] == LAUNCHER_ROLE_ARN]:
        assert "ExternalId" not in launcher_hop and "SourceIdentity" not in launcher_hop


def test_the_customer_hop_runs_on_the_launcher_roles_credentials(
    api: ApiCall, customer: Customer, aws_hooks: Hooks
) -> None:
    callers: list[str] = []

    def who(request: Any, **_: Any) -> None:
        body = request.body or b""
        if "deployer" in (body.decode() if isinstance(body, bytes) else str(body)):
            callers.append(request.headers["Authorization"].decode())

    aws_hooks("before-send.sts.AssumeRole", who)

    paste_connect(api, customer)

    # Signed with temporary credentials (moto's launcher-role key ids start ASIA/FSIA),
    # never with the function's own long-lived test key "testing".
    assert callers and all("Credential=testing/" not in c for c in callers)


def test_connecting_upgrades_freemium_to_personal(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    paste_connect(api, customer)

    assert tier_of(platform) == "personal"
    assert api("GET", "/me").body["tier"] == "personal"


def test_connecting_never_downgrades_enterprise(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    set_tier(platform, "enterprise")

    answer = paste_connect(api, customer)

    assert answer.status == 200
    assert tier_of(platform) == "enterprise"


def test_connecting_the_same_account_again_revalidates_it(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    paste_connect(api, customer)

    answer = paste_connect(api, customer)

    assert answer.status == 200
    assert tier_of(platform) == "personal"
    assert [r["action"] for r in audit_records(platform, "account.connect")] == [
        "account.connect",
        "account.connect",
    ]


def test_connecting_a_second_account_needs_a_disconnect_first(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    external_id = onboard(api).body["externalId"]
    paste_connect(api, customer, externalId=external_id)
    before = platform.snapshot()

    answer = paste_connect(
        api,
        customer,
        externalId=external_id,
        roleArn=f"arn:aws:iam::222222222222:role/{PREFIX}-deployer",
    )

    assert answer.status == 409
    assert answer.error_code == "ACCOUNT_ALREADY_CONNECTED"
    assert platform.snapshot() == before


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"roleArn": "arn:aws:iam::12345:role/agent-builder-deployer"}, "INVALID_ROLE_ARN"),
        ({"roleArn": "arn:aws:iam::111111111111:user/agent-builder-deployer"}, "INVALID_ROLE_ARN"),
        ({"roleArn": "not an arn"}, "INVALID_ROLE_ARN"),
        ({"roleArn": "arn:aws:iam::111111111111:role/admin"}, "INVALID_ROLE_ARN"),
        (
            {"roleArn": f"arn:aws:iam::{PLATFORM_ACCOUNT}:role/{PREFIX}-deployer"},
            "ROLE_IN_PLATFORM_ACCOUNT",
        ),
        ({"region": "eu-middle-9"}, "INVALID_REGION"),
        ({"externalId": "somebody-elses-external-id-000000000000"}, "EXTERNAL_ID_MISMATCH"),
    ],
)
def test_a_bad_connection_request_is_refused_with_400_and_nothing_stored(
    api: ApiCall, customer: Customer, platform: Platform, overrides: dict[str, str], code: str
) -> None:
    external_id = onboard(api).body["externalId"]
    before = platform.snapshot()

    answer = paste_connect(api, customer, **{"externalId": external_id, **overrides})

    assert answer.status == 400
    assert answer.error_code == code
    assert platform.snapshot() == before  # no account, no tier change, no audit record


def test_refusals_come_in_the_documented_order(api: ApiCall, customer: Customer) -> None:
    onboard(api)
    everything_wrong = {
        "roleArn": f"arn:aws:iam::{PLATFORM_ACCOUNT}:role/{PREFIX}-deployer",
        "region": "nowhere-1",
        "externalId": "wrong-wrong-wrong-wrong-wrong-wrong",
    }

    assert paste_connect(api, customer, **everything_wrong).error_code == "ROLE_IN_PLATFORM_ACCOUNT"
    everything_wrong["roleArn"] = CUSTOMER_ROLE_ARN
    assert paste_connect(api, customer, **everything_wrong).error_code == "INVALID_REGION"
    everything_wrong["region"] = CUSTOMER_REGION
    assert paste_connect(api, customer, **everything_wrong).error_code == "EXTERNAL_ID_MISMATCH"


def test_connecting_without_onboarding_first_is_an_external_id_mismatch(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    answer = paste_connect(api, customer, externalId="x" * 43)

    assert answer.status == 400
    assert answer.error_code == "EXTERNAL_ID_MISMATCH"
    assert platform.table_items("ACCOUNTS_TABLE") == []


def test_another_users_external_id_is_not_accepted(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    theirs = api("POST", "/aws-account/onboarding", user="someone-else").body["externalId"]
    onboard(api)

    answer = paste_connect(api, customer, externalId=theirs)

    assert answer.error_code == "EXTERNAL_ID_MISMATCH"
    assert tier_of(platform) == "freemium"


# ---- validation failures: 422 naming the failed check ------------------------------------


def deny_customer_role(params: dict[str, Any]) -> bool:
    return "deployer" in json.dumps(params.get("body"), default=str)


def test_a_role_that_cannot_be_assumed_answers_422_about_trust_and_external_id(
    api: ApiCall, customer: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    aws_hooks("before-call.sts.AssumeRole", aws_error("AccessDenied", when=deny_customer_role))

    answer = paste_connect(api, customer)

    assert answer.status == 422
    assert answer.error_code == "ROLE_VALIDATION_FAILED"
    message = answer.body["error"]["message"]
    assert message.startswith("assumeRole: the platform could not assume the role")
    assert "check the trust policy" in message and "External ID" in message
    assert LAUNCHER_ROLE_ARN in message


@pytest.mark.parametrize(
    ("operation", "error", "check", "words"),
    [
        (
            "before-call.ecs.DescribeClusters",
            "AccessDeniedException",
            "cluster",
            "ecs:DescribeClusters",
        ),
        ("before-call.ecs.ListTasks", "AccessDeniedException", "tasks", "ecs:ListTasks"),
        (
            "before-call.ec2.DescribeSecurityGroups",
            "UnauthorizedOperation",
            "securityGroup",
            "ec2:DescribeSecurityGroups",
        ),
        (
            "before-call.ec2.DescribeSubnets",
            "UnauthorizedOperation",
            "subnets",
            "ec2:DescribeSubnets",
        ),
        (
            "before-call.cloudwatch-logs.DescribeLogStreams",
            "AccessDeniedException",
            "logGroup",
            "logs:DescribeLogStreams",
        ),
    ],
)
def test_a_missing_permission_answers_422_naming_the_check(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    aws_hooks: Hooks,
    operation: str,
    error: str,
    check: str,
    words: str,
) -> None:
    aws_hooks(operation, aws_error(error))

    answer = paste_connect(api, customer)

    assert answer.status == 422
    message = answer.body["error"]["message"]
    assert message.startswith(f"{check}: the role may not call {words}")
    assert "update the onboarding stack" in message


def test_a_deleted_cluster_answers_422(api: ApiCall, customer: Customer) -> None:
    customer.client("ecs").delete_cluster(cluster=customer.cluster_arn)

    answer = paste_connect(api, customer)

    assert answer.status == 422
    assert answer.body["error"]["message"] == (
        f"cluster: the ECS cluster {PREFIX}-cluster is INACTIVE, not ACTIVE"
    )


def test_a_region_without_the_stack_answers_422_about_the_cluster(
    api: ApiCall, customer: Customer
) -> None:
    answer = paste_connect(api, customer, region="us-west-2")

    assert answer.status == 422
    assert answer.body["error"]["message"].startswith("cluster: no ECS cluster")


def test_a_missing_log_group_answers_422(api: ApiCall, customer: Customer) -> None:
    customer.client("logs").delete_log_group(logGroupName=customer.log_group)

    answer = paste_connect(api, customer)

    assert answer.status == 422
    assert answer.body["error"]["message"] == (
        f"logGroup: no log group /{PREFIX}/agent-runs in {CUSTOMER_REGION}"
    )


def test_an_unknown_security_group_answers_422(api: ApiCall, customer: Customer) -> None:
    answer = paste_connect(
        api, customer, subnetIds=customer.subnet_ids, securityGroupId="sg-0123456789abcdef0"
    )

    assert answer.status == 422
    assert answer.body["error"]["message"].startswith("securityGroup: no security group sg-0123")


def test_given_subnets_must_exist(api: ApiCall, customer: Customer) -> None:
    answer = paste_connect(
        api,
        customer,
        subnetIds=["subnet-0123456789abcdef0"],
        securityGroupId=customer.security_group_id,
    )

    assert answer.status == 422
    assert answer.body["error"]["message"].startswith("subnets: subnets not found")


def test_a_validation_failure_stores_nothing_but_is_audited(
    api: ApiCall, customer: Customer, platform: Platform, aws_hooks: Hooks
) -> None:
    external_id = onboard(api).body["externalId"]
    aws_hooks("before-call.sts.AssumeRole", aws_error("AccessDenied", when=deny_customer_role))

    paste_connect(api, customer, externalId=external_id)

    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item["status"] == "pending" and "roleArn" not in item
    assert tier_of(platform) == "freemium"
    [record] = audit_records(platform, "account.validate")
    assert record["result"] == "failure"
    assert record["accountId"] == CUSTOMER_ACCOUNT
    assert record["reason"].startswith("assumeRole:")
    assert external_id not in json.dumps(record)


# ---- GET / DELETE /aws-account --------------------------------------------------------------


def test_get_without_a_connection_answers_404(api: ApiCall) -> None:
    onboard(api)

    answer = api("GET", "/aws-account")

    assert answer.status == 404
    assert answer.error_code == "AWS_ACCOUNT_NOT_FOUND"


def test_get_shows_the_connection_and_template_version(api: ApiCall, customer: Customer) -> None:
    paste_connect(api, customer)

    answer = api("GET", "/aws-account")

    assert answer.status == 200
    assert answer.body["accountId"] == CUSTOMER_ACCOUNT
    assert answer.body["latestTemplateVersion"] == TEMPLATE_VERSION
    # No onboarding stack to read the version from (tests/runtime/test_template_versions.py
    # reads one): the version is unknown, and nothing claims it outdated.
    assert answer.body["templateVersion"] == "unknown"
    assert answer.body["templateOutdated"] is None
    assert answer.body["updateUrl"] is None
    assert "externalId" not in answer.body


@pytest.mark.parametrize(
    ("stored", "outdated"),
    [("1.1.9", True), ("1.2.0", False), ("1.10.0", False), ("0.9.0", True), ("2.0.0", False)],
)
def test_template_outdated_compares_versions_numerically(
    api: ApiCall, customer: Customer, platform: Platform, stored: str, outdated: bool
) -> None:
    paste_connect(api, customer)
    platform.client("dynamodb").update_item(
        TableName=platform.env["ACCOUNTS_TABLE"],
        Key={"userId": {"S": USER}},
        UpdateExpression="SET templateVersion = :v",
        ExpressionAttributeValues={":v": {"S": stored}},
    )

    assert api("GET", "/aws-account").body["templateOutdated"] is outdated


def test_disconnecting_turns_personal_back_into_freemium(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    external_id = onboard(api).body["externalId"]
    paste_connect(api, customer, externalId=external_id)

    answer = api("DELETE", "/aws-account")

    assert answer.status == 204
    assert tier_of(platform) == "freemium"
    assert api("GET", "/aws-account").status == 404
    # The External ID stays, pending: relaunching the stack connects again.
    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item == {
        "userId": USER,
        "externalId": external_id,
        "status": "pending",
        "createdAt": item["createdAt"],
        "registrationTokenHash": item["registrationTokenHash"],
        "registrationTokenExpiresAt": item["registrationTokenExpiresAt"],
    }


def test_disconnecting_leaves_enterprise_alone(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    set_tier(platform, "enterprise")
    paste_connect(api, customer)

    api("DELETE", "/aws-account")

    assert tier_of(platform) == "enterprise"


def test_disconnecting_without_a_connection_answers_404(api: ApiCall, platform: Platform) -> None:
    answer = api("DELETE", "/aws-account")

    assert answer.status == 404
    assert answer.error_code == "AWS_ACCOUNT_NOT_FOUND"


def test_connect_and_disconnect_are_audited(
    api: ApiCall, customer: Customer, platform: Platform
) -> None:
    external_id = onboard(api).body["externalId"]
    paste_connect(api, customer, externalId=external_id)
    api("DELETE", "/aws-account")

    records = audit_records(platform)
    assert [r["action"] for r in records] == [
        "account.onboarding",
        "account.connect",
        "account.disconnect",
    ]
    connect, disconnect = records[1], records[2]
    assert connect["accountId"] == disconnect["accountId"] == CUSTOMER_ACCOUNT
    assert connect["result"] == disconnect["result"] == "success"
    assert connect["tier"] == "personal" and disconnect["tier"] == "freemium"
    assert all(r["expiresAt"] > r["eventId"].count("#") for r in records)
    assert external_id not in json.dumps(records)


def test_the_account_settings_are_required_for_the_account_routes(
    api: ApiCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_builder import settings, wiring
    from agent_builder.settings import SettingsError

    monkeypatch.delenv("TEMPLATE_URL")
    wiring.reset(keep_clients=True)

    with pytest.raises(SettingsError, match="TEMPLATE_URL is required"):
        settings.load(settings.ConnectedAccounts)
    assert api("POST", "/aws-account/onboarding").status == 500
