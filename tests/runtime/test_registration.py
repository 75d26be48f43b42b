"""The registration handler: onboarding stacks' custom-resource messages through SNS."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent_builder.gateways import cfn_response
from agent_builder.gateways.cfn_response import is_response_url
from agent_builder.services import accounts as accounts_module
from agent_builder.services.registration import NOT_VERIFIED_REASON
from tests.runtime.support import (
    CUSTOMER_ACCOUNT,
    PREFIX,
    TOPIC_ARN,
    ApiCall,
    Customer,
    Platform,
    audit_records,
    aws_answer,
    aws_error,
    onboard,
    paste_connect,
    tier_of,
)

RESPONSE_URL = (
    "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/"
    "arn%3Aaws%3Acloudformation%3Aeu-west-1%3A111111111111%3Astack/x/y%7CRegistration%7Creq"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"
)
Hooks = Any


@dataclass
class Sent:
    url: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class CloudFormation:
    """Stands in for the pre-signed S3 URL: records every PUT the handler makes."""

    sent: list[Sent] = field(default_factory=list)
    fail: bool = False

    def open(self, request: Any, timeout: float) -> Any:
        if self.fail:
            raise OSError("connection reset")
        self.sent.append(
            Sent(
                url=request.full_url,
                method=request.get_method(),
                headers=dict(request.header_items()),
                body=json.loads(request.data),
            )
        )
        return _Answer()

    @property
    def answer(self) -> dict[str, Any]:
        [sent] = self.sent
        return sent.body


class _Answer:
    status = 200

    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


class FakeClock:
    """Replaces the validator's `time`: retries wait on this clock, not the real one."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch, platform: Platform) -> CloudFormation:
    fake = CloudFormation()
    monkeypatch.setattr(
        cfn_response, "urlopen", lambda request, timeout: fake.open(request, timeout)
    )
    monkeypatch.setattr(cfn_response.time, "sleep", lambda _: None)
    return fake


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(accounts_module, "time", fake)
    return fake


# The registration token each onboarding answer's Launch Stack link carried, by External ID
# (the newest one), as the customer's stack passes it in the RegistrationToken property.
TOKENS: dict[str, str] = {}
STACK_ID = (
    "arn:aws:cloudformation:eu-west-1:111111111111:"
    f"stack/{PREFIX}-onboarding/0b6c7a30-0000-4000-8000-000000000001"
)


def link_token(answer: dict[str, Any]) -> str:
    """The RegistrationToken the Launch Stack link prefills."""
    query = urlsplit(answer["launchStackUrl"]).fragment.split("?", 1)[1]
    [token] = parse_qs(query)["param_RegistrationToken"]
    return token


def onboard_for_token(api: ApiCall) -> str:
    answer = onboard(api).body
    TOKENS[answer["externalId"]] = link_token(answer)
    return TOKENS[answer["externalId"]]


def request(
    kind: str, customer: Customer, external_id: str, *, url: str = RESPONSE_URL, **props: Any
) -> dict[str, Any]:
    properties = {
        "ServiceToken": TOPIC_ARN,
        "RoleArn": customer.role_arn,
        "ExternalId": external_id,
        "RegistrationToken": TOKENS.get(external_id, ""),
        "AccountId": customer.account_id,
        "Region": customer.region,
        "ResourcePrefix": PREFIX,
        "ClusterArn": customer.cluster_arn,
        "SubnetIds": customer.subnet_ids,
        "SecurityGroupId": customer.security_group_id,
        "ExecutionRoleArn": f"arn:aws:iam::{customer.account_id}:role/{PREFIX}-task-execution",
        "TaskRoleArn": f"arn:aws:iam::{customer.account_id}:role/{PREFIX}-agent-task",
        "LogGroupName": customer.log_group,
        "TemplateVersion": "1.1.0",
        **props,
    }
    message: dict[str, Any] = {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": f"arn:aws:cloudformation:{customer.region}:{customer.account_id}:"
        f"stack/{PREFIX}-onboarding/0b6c7a30-0000-4000-8000-000000000001",
        "RequestId": f"request-{kind}",
        "ResourceType": "Custom::AgentBuilderRegistration",
        "LogicalResourceId": "Registration",
        "ResourceProperties": properties,
    }
    if kind != "Create":
        message["PhysicalResourceId"] = f"{PREFIX}-registration-{customer.account_id}"
    if kind == "Update":
        message["OldResourceProperties"] = properties
    return message


def deliver(message: dict[str, Any] | str) -> dict[str, Any]:
    from handlers.registration import handler
    from tests.runtime.support import lambda_context

    text = message if isinstance(message, str) else json.dumps(message)
    event = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"TopicArn": TOPIC_ARN, "Type": "Notification", "Message": text},
            }
        ]
    }
    return handler(event, lambda_context("agent-builder-registration"))


@pytest.fixture
def external_id(api: ApiCall) -> str:
    TOKENS.clear()
    answer = onboard(api).body
    TOKENS[answer["externalId"]] = link_token(answer)
    return str(answer["externalId"])


def stack_status(status: str, stack_id: str = STACK_ID) -> Callable[..., Any]:
    """DescribeStacks in the customer's account answers the stack in `status`."""
    return aws_answer(
        {
            "Stacks": [
                {
                    "StackName": f"{PREFIX}-onboarding",
                    "StackId": stack_id,
                    "StackStatus": status,
                    "CreationTime": "2026-12-01T00:00:00Z",
                }
            ]
        }
    )


# ---- Create ------------------------------------------------------------------------------


def test_create_connects_the_stacks_account_and_answers_success(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
) -> None:
    deliver(request("Create", customer, external_id))

    answer = cloudformation.answer
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == f"{PREFIX}-registration-{CUSTOMER_ACCOUNT}"
    assert answer["RequestId"] == "request-Create"
    assert answer["LogicalResourceId"] == "Registration"
    assert answer["StackId"].startswith("arn:aws:cloudformation:eu-west-1:111111111111:stack/")
    account = api("GET", "/aws-account").body
    assert account["accountId"] == CUSTOMER_ACCOUNT
    assert account["connectedVia"] == "registration"
    assert account["templateVersion"] == "1.1.0"
    assert account["templateOutdated"] is True  # the platform is at 1.2.0
    assert account["subnetIds"] == customer.subnet_ids
    assert tier_of(platform) == "personal"


def test_the_answer_is_an_https_put_with_an_empty_content_type(
    customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))

    [sent] = cloudformation.sent
    assert sent.method == "PUT"
    assert sent.url == RESPONSE_URL
    assert sent.headers["Content-type"] == ""
    assert len(json.dumps(sent.body)) < 4096


def test_create_with_an_unknown_external_id_fails_and_changes_nothing(
    customer: Customer, platform: Platform, cloudformation: CloudFormation, external_id: str
) -> None:
    before = platform.snapshot()
    unknown = "unknown-" + "x" * 40

    deliver(request("Create", customer, unknown))

    assert cloudformation.answer["Status"] == "FAILED"
    assert cloudformation.answer["Reason"] == NOT_VERIFIED_REASON
    assert unknown not in cloudformation.answer["Reason"]
    assert platform.snapshot() == before


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({"AccountId": "222222222222"}, "AccountId is not the account of RoleArn"),
        (
            {
                "RoleArn": f"arn:aws:iam::123456789012:role/{PREFIX}-deployer",
                "AccountId": "123456789012",
            },
            "platform's own AWS account",
        ),
        ({"Region": "moon-east-1"}, "Region is not an AWS region"),
        ({"ClusterArn": "arn:aws:ecs:eu-west-1:111111111111:cluster/other"}, "ClusterArn must be"),
        ({"SubnetIds": ["not-a-subnet"]}, "SubnetIds must be"),
    ],
)
def test_create_with_inconsistent_properties_fails_and_connects_nothing(
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    props: dict[str, Any],
    reason: str,
) -> None:
    deliver(request("Create", customer, external_id, **props))

    assert cloudformation.answer["Status"] == "FAILED"
    assert reason in cloudformation.answer["Reason"]
    assert tier_of(platform) == "freemium"
    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item["status"] == "pending"
    [record] = audit_records(platform, "account.registration")
    assert record["result"] == "failure"


def test_create_waits_for_a_new_role_to_become_assumable(
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    clock: FakeClock,
    external_id: str,
    aws_hooks: Hooks,
) -> None:
    attempts: list[int] = []

    def denied_twice(params: dict[str, Any]) -> bool:
        if "deployer" not in json.dumps(params.get("body"), default=str):
            return False
        attempts.append(1)
        return len(attempts) <= 2

    aws_hooks("before-call.sts.AssumeRole", aws_error("AccessDenied", when=denied_twice))

    deliver(request("Create", customer, external_id))

    assert cloudformation.answer["Status"] == "SUCCESS"
    assert clock.slept == [2.0, 4.0]
    assert tier_of(platform) == "personal"


def test_create_fails_with_the_check_when_the_role_never_becomes_assumable(
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    clock: FakeClock,
    external_id: str,
    aws_hooks: Hooks,
) -> None:
    aws_hooks(
        "before-call.sts.AssumeRole",
        aws_error("AccessDenied", when=lambda p: "deployer" in json.dumps(p["body"], default=str)),
    )

    deliver(request("Create", customer, external_id))

    assert cloudformation.answer["Status"] == "FAILED"
    assert cloudformation.answer["Reason"].startswith("assumeRole: the platform could not assume")
    assert 0 < sum(clock.slept) <= 40
    assert tier_of(platform) == "freemium"
    [record] = audit_records(platform, "account.validate")
    assert record["via"] == "registration" and record["result"] == "failure"


def test_a_create_delivered_twice_succeeds_twice(
    customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))
    deliver(request("Create", customer, external_id))

    assert [sent.body["Status"] for sent in cloudformation.sent] == ["SUCCESS", "SUCCESS"]


def test_create_from_a_second_account_fails_while_the_first_is_connected(
    api: ApiCall, customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))
    onboard_for_token(api)  # a fresh link: the first token is used
    other = f"arn:aws:iam::222222222222:role/{PREFIX}-deployer"
    message = request(
        "Create",
        customer,
        external_id,
        RoleArn=other,
        AccountId="222222222222",
        ClusterArn=f"arn:aws:ecs:eu-west-1:222222222222:cluster/{PREFIX}-cluster",
    )
    message["StackId"] = message["StackId"].replace(CUSTOMER_ACCOUNT, "222222222222")

    deliver(message)

    assert cloudformation.sent[-1].body["Status"] == "FAILED"
    assert "disconnect it first" in cloudformation.sent[-1].body["Reason"]
    assert api("GET", "/aws-account").body["accountId"] == CUSTOMER_ACCOUNT


# ---- Update ------------------------------------------------------------------------------


def test_update_refreshes_the_connection_and_keeps_the_physical_id(
    api: ApiCall, customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))

    deliver(request("Update", customer, external_id, TemplateVersion="1.2.0"))

    update = cloudformation.sent[-1].body
    assert update["Status"] == "SUCCESS"
    assert update["PhysicalResourceId"] == cloudformation.sent[0].body["PhysicalResourceId"]
    account = api("GET", "/aws-account").body
    assert account["templateVersion"] == "1.2.0"
    assert account["templateOutdated"] is False


def test_update_with_an_unknown_external_id_fails_and_changes_nothing(
    customer: Customer, platform: Platform, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))
    before = platform.snapshot()

    deliver(request("Update", customer, "someone-elses-" + "y" * 30))

    assert cloudformation.sent[-1].body["Status"] == "FAILED"
    assert platform.snapshot() == before


# ---- Delete ------------------------------------------------------------------------------


def test_delete_disconnects_and_answers_success(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    aws_hooks: Hooks,
) -> None:
    deliver(request("Create", customer, external_id))
    aws_hooks("before-call.cloudformation.DescribeStacks", stack_status("DELETE_IN_PROGRESS"))

    deliver(request("Delete", customer, external_id))

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert api("GET", "/aws-account").status == 404
    assert tier_of(platform) == "freemium"
    [record] = audit_records(platform, "account.disconnect")
    assert record["via"] == "registration"


def test_delete_with_an_unknown_external_id_succeeds_and_changes_nothing(
    customer: Customer, platform: Platform, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))
    before = platform.snapshot()

    deliver(request("Delete", customer, "unknown-" + "z" * 40))

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert platform.snapshot() == before


def test_deleting_another_accounts_stack_with_the_same_external_id_keeps_the_connection(
    api: ApiCall, customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))

    # E.g. the rollback of a refused Create in a second account.
    deliver(request("Delete", customer, external_id, AccountId="222222222222"))

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert api("GET", "/aws-account").status == 200


def test_deleting_a_stack_does_not_disconnect_a_pasted_connection(
    api: ApiCall,
    customer: Customer,
    cloudformation: CloudFormation,
    external_id: str,
    aws_hooks: Hooks,
) -> None:
    # No stack registered it, so no stack's Delete is believed (DELETE /aws-account is
    # how a pasted connection ends).
    paste_connect(api, customer, externalId=external_id)
    aws_hooks("before-call.cloudformation.DescribeStacks", stack_status("DELETE_IN_PROGRESS"))

    deliver(request("Delete", customer, external_id))

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert api("GET", "/aws-account").status == 200


# ---- every acted-on message is answered; no other URL is ever contacted -------------------


def test_an_unexpected_error_on_create_still_answers_failed(
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent_builder.repositories.accounts import AccountsRepository

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("DynamoDB is having a bad day")

    monkeypatch.setattr(AccountsRepository, "find_by_external_id", broken)

    result = deliver(request("Create", customer, external_id))

    assert result == {"results": ["FAILED"], "batchItemFailures": []}
    assert cloudformation.answer["Status"] == "FAILED"
    assert "internal error" in cloudformation.answer["Reason"]
    assert "bad day" not in cloudformation.answer["Reason"]


def test_an_unexpected_error_on_delete_answers_success_and_is_retried(
    customer: Customer,
    cloudformation: CloudFormation,
    external_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent_builder.repositories.accounts import AccountsRepository

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("DynamoDB is having a bad day")

    monkeypatch.setattr(AccountsRepository, "find_by_external_id", broken)

    with pytest.raises(RuntimeError):  # Lambda's async retry runs the disconnect again
        deliver(request("Delete", customer, external_id))

    assert cloudformation.answer["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    "url",
    [
        "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "https://attacker.example.com/collect",
        "https://169.254.169.254/latest/meta-data/",
        "https://s3.amazonaws.com.attacker.example.com/x",
        "https://user:secret@bucket.s3.amazonaws.com/x",
        "https://bucket.s3.amazonaws.com:8443/x",
        "https://internal-service.amazonaws.com/x",
        "file:///etc/passwd",
        "http://127.0.0.1:8080/_local/cfn-response/x",
        "https://my-own-bucket.s3.amazonaws.com/key",  # S3, but not CloudFormation's bucket
        "https://s3.amazonaws.com/attacker-bucket/key",
        "https://s3.us-west-2.amazonaws.com/cloudformation-custom-resource-response-uswest2",
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.evil.example/x",
        "https://cloudformation-custom-resource-response-useast1.evil.s3.amazonaws.com/x",
        "https://cloudformation-custom-resource-response-useast1.s3-accelerate.amazonaws.com/x",
        "",
    ],
)
def test_a_response_url_that_is_not_cloudformations_is_never_contacted(
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    url: str,
) -> None:
    before = platform.snapshot()

    result = deliver(request("Create", customer, external_id, url=url))

    assert result == {"results": ["refused"], "batchItemFailures": []}
    assert cloudformation.sent == []
    assert platform.snapshot() == before


@pytest.mark.parametrize(
    "url",
    [
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/a?b=c",
        "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/a",
        "https://cloudformation-custom-resource-response-apsoutheast2.s3.ap-southeast-2.amazonaws.com/a",
        "https://s3.amazonaws.com/cloudformation-custom-resource-response-useast1/a?b=c",
        "https://s3-us-west-2.amazonaws.com/cloudformation-custom-resource-response-uswest2/a",
        "https://s3.eu-west-1.amazonaws.com/cloudformation-custom-resource-response-euwest1/a",
    ],
)
def test_cloudformation_response_urls_are_accepted(url: str) -> None:
    assert is_response_url(url)


def test_a_response_put_that_keeps_failing_is_raised_for_lambda_to_retry(
    customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    cloudformation.fail = True

    with pytest.raises(OSError):
        deliver(request("Create", customer, external_id))


def test_a_message_that_is_not_json_is_ignored(cloudformation: CloudFormation) -> None:
    assert deliver("not json") == {"results": ["ignored"], "batchItemFailures": []}
    assert cloudformation.sent == []


def test_registration_logs_never_contain_the_external_id(
    customer: Customer,
    cloudformation: CloudFormation,
    external_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deliver(request("Create", customer, external_id))
    deliver(request("Create", customer, "unknown-" + "q" * 40))

    output = capsys.readouterr()
    assert external_id not in output.out + output.err
    assert "unknown-qqqq" not in output.out + output.err


def test_no_environment_variable_opens_a_loopback_response_url(
    customer: Customer,
    cloudformation: CloudFormation,
    external_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local-mode prefix that once widened the accepted URLs is gone: setting it
    changes nothing (local mode answers at CloudFormation-shaped URLs instead)."""
    from agent_builder import wiring

    monkeypatch.setenv("LOCAL_RESPONSE_URL_PREFIX", "http://127.0.0.1:8080/_local/cfn-response/")
    wiring.reset(keep_clients=True)

    result = deliver(
        request("Create", customer, external_id, url="http://127.0.0.1:8080/_local/cfn-response/1")
    )

    assert result["results"] == ["refused"]
    assert cloudformation.sent == []


# ---- forged registrations (issue 10 section 1) ----------------------------------------


def accounts_and_profiles(platform: Platform) -> tuple[Any, Any]:
    return platform.table_items("ACCOUNTS_TABLE"), platform.table_items("PROFILES_TABLE")


@pytest.mark.parametrize(
    "token",
    [
        "",  # the attacker knows the External ID, not the token
        "A" * 43,  # a wrong token of the right shape
        None,  # no RegistrationToken property at all
    ],
)
def test_a_create_without_the_users_token_connects_nothing(
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    token: str | None,
) -> None:
    before = accounts_and_profiles(platform)
    message = request("Create", customer, external_id)
    if token is None:
        del message["ResourceProperties"]["RegistrationToken"]
    else:
        message["ResourceProperties"]["RegistrationToken"] = token

    deliver(message)

    assert cloudformation.answer["Status"] == "FAILED"
    assert cloudformation.answer["Reason"] == NOT_VERIFIED_REASON
    assert CUSTOMER_ACCOUNT not in json.dumps(cloudformation.answer["Reason"])
    assert accounts_and_profiles(platform) == before
    [record] = audit_records(platform, "account.registration")
    assert record["result"] == "failure"


def test_an_expired_token_connects_nothing(
    customer: Customer, platform: Platform, cloudformation: CloudFormation, external_id: str
) -> None:
    [item] = platform.table_items("ACCOUNTS_TABLE")
    platform.client("dynamodb").update_item(
        TableName=platform.env["ACCOUNTS_TABLE"],
        Key={"userId": {"S": item["userId"]}},
        UpdateExpression="SET registrationTokenExpiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1700000000"}},
    )
    before = accounts_and_profiles(platform)

    deliver(request("Create", customer, external_id))

    assert cloudformation.answer["Status"] == "FAILED"
    assert cloudformation.answer["Reason"] == NOT_VERIFIED_REASON
    assert accounts_and_profiles(platform) == before


def test_a_used_token_cannot_register_again(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
) -> None:
    deliver(request("Create", customer, external_id))
    assert api("DELETE", "/aws-account").status == 204
    before = accounts_and_profiles(platform)
    replay = request("Create", customer, external_id)  # the same token, another stack
    replay["StackId"] = replay["StackId"].replace("0b6c7a30", "ffffffff")

    deliver(replay)

    assert cloudformation.sent[-1].body["Status"] == "FAILED"
    assert cloudformation.sent[-1].body["Reason"] == NOT_VERIFIED_REASON
    assert accounts_and_profiles(platform) == before
    assert api("GET", "/aws-account").status == 404


def test_only_the_newest_links_token_registers(
    api: ApiCall, customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    old = TOKENS[external_id]
    new = onboard_for_token(api)

    deliver(request("Create", customer, external_id, RegistrationToken=old))
    deliver(request("Create", customer, external_id, RegistrationToken=new))

    assert [sent.body["Status"] for sent in cloudformation.sent] == ["FAILED", "SUCCESS"]


def test_the_token_is_stored_only_as_its_hash_with_a_24_hour_expiry(
    platform: Platform, external_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    import time

    token = TOKENS[external_id]
    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item["registrationTokenHash"] == hashlib.sha256(token.encode()).hexdigest()
    assert abs(int(item["registrationTokenExpiresAt"]) - (time.time() + 86400)) < 120
    assert token not in json.dumps(platform.snapshot(), default=str)
    output = capsys.readouterr()
    assert token not in output.out + output.err


def test_a_connect_consumes_the_token_and_binds_the_stack(
    platform: Platform, customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))

    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert "registrationTokenHash" not in item and "registrationTokenExpiresAt" not in item
    assert item["registrationStackId"] == STACK_ID
    assert item["registrationPhysicalId"] == f"{PREFIX}-registration-{CUSTOMER_ACCOUNT}"


def test_concurrent_creates_for_one_user_cannot_both_win(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two Creates with the user's token from two accounts: the second is validated while
    the first is still validating, so both read the token as unused; only the first write
    that lands may connect."""
    other_account = "222222222222"
    second = request(
        "Create",
        customer,
        external_id,
        RoleArn=f"arn:aws:iam::{other_account}:role/{PREFIX}-deployer",
        AccountId=other_account,
        ClusterArn=f"arn:aws:ecs:eu-west-1:{other_account}:cluster/{PREFIX}-cluster",
    )
    second["StackId"] = second["StackId"].replace(CUSTOMER_ACCOUNT, other_account)
    real_validate = accounts_module.ConnectionValidator.validate

    def validate(self: Any, candidate: Any, user_id: str, *, patience: float = 0.0) -> Any:
        if candidate.account_id != other_account:
            return real_validate(self, candidate, user_id, patience=0.0)
        # Account 222222222222 passes its checks (moto has no such account to probe);
        # meanwhile the Create from 111111111111 overtakes it and lands first.
        deliver(request("Create", customer, external_id))
        return {
            "roleArn": candidate.role_arn,
            "accountId": other_account,
            "region": candidate.region,
            "resourcePrefix": PREFIX,
            "clusterArn": candidate.cluster_arn,
            "subnetIds": list(candidate.subnet_ids),
            "securityGroupId": candidate.security_group_id,
            "templateVersion": candidate.template_version,
            "connectedVia": "registration",
        }

    monkeypatch.setattr(accounts_module.ConnectionValidator, "validate", validate)

    deliver(second)

    statuses = [sent.body["Status"] for sent in cloudformation.sent]
    assert statuses == ["SUCCESS", "FAILED"]  # the overtaking one, then the first
    assert api("GET", "/aws-account").body["accountId"] == CUSTOMER_ACCOUNT
    [connect] = audit_records(platform, "account.connect")
    assert connect["accountId"] == CUSTOMER_ACCOUNT


def test_a_forged_delete_from_another_stack_keeps_the_connection(
    api: ApiCall,
    customer: Customer,
    cloudformation: CloudFormation,
    external_id: str,
    aws_hooks: Hooks,
) -> None:
    deliver(request("Create", customer, external_id))
    forged_stack = STACK_ID.replace("0b6c7a30", "aaaaaaaa")
    aws_hooks(
        "before-call.cloudformation.DescribeStacks",
        stack_status("DELETE_IN_PROGRESS", forged_stack),
    )
    forged = request("Delete", customer, external_id)
    forged["StackId"] = forged_stack

    deliver(forged)

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert api("GET", "/aws-account").body["accountId"] == CUSTOMER_ACCOUNT


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "UPDATE_ROLLBACK_IN_PROGRESS", None])
def test_a_delete_the_stack_does_not_confirm_keeps_the_connection(
    api: ApiCall,
    customer: Customer,
    cloudformation: CloudFormation,
    external_id: str,
    aws_hooks: Hooks,
    status: str | None,
) -> None:
    """The registering StackId is not a secret: a Delete with it is believed only when the
    stack itself, read through the stored role, is being deleted (None: the stack cannot
    be read at all)."""
    deliver(request("Create", customer, external_id))
    if status is None:
        aws_hooks("before-call.cloudformation.DescribeStacks", aws_error("AccessDenied"))
    else:
        aws_hooks("before-call.cloudformation.DescribeStacks", stack_status(status))

    deliver(request("Delete", customer, external_id))

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    assert api("GET", "/aws-account").status == 200


def test_the_delete_check_reads_the_stack_through_the_deployer_role(
    customer: Customer, cloudformation: CloudFormation, external_id: str, aws_hooks: Hooks
) -> None:
    deliver(request("Create", customer, external_id))
    asked: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        asked.append(params)

    assumed: list[dict[str, Any]] = []

    def record_assume(params: dict[str, Any], **_: Any) -> None:
        assumed.append(params["body"])

    aws_hooks("before-call.cloudformation.DescribeStacks", record)
    aws_hooks("before-call.cloudformation.DescribeStacks", stack_status("DELETE_IN_PROGRESS"))
    aws_hooks("before-call.sts.AssumeRole", record_assume)

    deliver(request("Delete", customer, external_id))

    [call] = asked
    assert call["body"]["StackName"] == STACK_ID
    deployer = [hop for hop in assumed if hop["RoleArn"] == customer.role_arn]
    assert [hop["RoleSessionName"] for hop in deployer] == [f"{PREFIX}-registration"]
    assert deployer[0]["ExternalId"] == external_id


def test_a_rollback_delete_of_a_stale_physical_id_keeps_the_live_registration(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
    aws_hooks: Hooks,
) -> None:
    deliver(request("Create", customer, external_id))
    before = accounts_and_profiles(platform)
    # Even while the stack is being deleted, a Delete for a physical id that is not the
    # live one (the leftover of a failed update) is not the registration's.
    aws_hooks("before-call.cloudformation.DescribeStacks", stack_status("DELETE_IN_PROGRESS"))
    stale = request("Delete", customer, external_id)
    stale["PhysicalResourceId"] = f"{PREFIX}-registration-{CUSTOMER_ACCOUNT}-replaced"

    deliver(stale)

    assert cloudformation.sent[-1].body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": stale["PhysicalResourceId"],
        "StackId": STACK_ID,
        "RequestId": "request-Delete",
        "LogicalResourceId": "Registration",
    }
    assert accounts_and_profiles(platform) == before


def test_an_update_from_another_stack_without_a_token_changes_nothing(
    customer: Customer, platform: Platform, cloudformation: CloudFormation, external_id: str
) -> None:
    deliver(request("Create", customer, external_id))
    before = accounts_and_profiles(platform)
    forged = request("Update", customer, external_id, TemplateVersion="9.9.9")
    forged["StackId"] = STACK_ID.replace("0b6c7a30", "bbbbbbbb")

    deliver(forged)

    assert cloudformation.sent[-1].body["Status"] == "FAILED"
    assert cloudformation.sent[-1].body["Reason"] == NOT_VERIFIED_REASON
    assert accounts_and_profiles(platform) == before


def test_messages_arrive_through_the_queue_in_snss_envelope(
    api: ApiCall, customer: Customer, cloudformation: CloudFormation, external_id: str
) -> None:
    from handlers.registration import handler
    from tests.runtime.support import lambda_context

    envelope = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": TOPIC_ARN,
        "Message": json.dumps(request("Create", customer, external_id)),
    }
    event = {
        "Records": [
            {"messageId": "q-1", "eventSource": "aws:sqs", "body": json.dumps(envelope)},
            {"messageId": "q-2", "eventSource": "aws:sqs", "body": "not an envelope"},
        ]
    }

    result = handler(event, lambda_context("agent-builder-registration"))

    assert result == {"results": ["SUCCESS", "ignored"], "batchItemFailures": []}
    assert api("GET", "/aws-account").body["accountId"] == CUSTOMER_ACCOUNT


def test_an_update_of_a_stack_connected_before_binding_needs_a_fresh_token_and_binds_it(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
) -> None:
    """A stack from before template 1.2.0 (connected by pasting here): its Update is
    believed only with a new link's token, which it spends and which binds the stack."""
    paste_connect(api, customer, externalId=external_id)
    stale = request("Update", customer, external_id, RegistrationToken="")
    deliver(stale)
    assert cloudformation.sent[-1].body["Status"] == "FAILED"

    token = onboard_for_token(api)
    deliver(request("Update", customer, external_id, RegistrationToken=token))

    assert cloudformation.sent[-1].body["Status"] == "SUCCESS"
    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item["registrationStackId"] == STACK_ID
    assert "registrationTokenHash" not in item


# ---- template versions ------------------------------------------------------------------------


def test_a_registration_stores_its_template_version_and_links_the_update_to_its_stack(
    api: ApiCall,
    customer: Customer,
    platform: Platform,
    cloudformation: CloudFormation,
    external_id: str,
) -> None:
    from urllib.parse import parse_qs, urlsplit

    message = request("Create", customer, external_id, TemplateVersion="1.0.0")
    deliver(message)

    [item] = platform.table_items("ACCOUNTS_TABLE")
    assert item["templateVersion"] == "1.0.0"
    assert item["stackId"] == message["StackId"]
    account = api("GET", "/aws-account").body
    route, _, query = urlsplit(account["updateUrl"]).fragment.partition("?")
    assert route == "/stacks/update/template"
    assert parse_qs(query)["stackId"] == [message["StackId"]]
