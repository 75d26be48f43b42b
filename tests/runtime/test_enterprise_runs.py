"""Tier 3 deployments: an organisation's agent runs in the organisation's account, through
its registered account role (SourceIdentity = the member) or the member's IAM Identity
Center session; every member follows the run from there.

moto for DynamoDB, STS, ECS, Logs and KMS; botocore's Stubber for `sso`, which moto lacks
(its answer carries credentials moto maps to the organisation's account)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agent_builder import clients, wiring
from agent_builder.repositories.org_accounts import OrgAccountsRepository
from agent_builder.services.caller import Caller
from tests.runtime import sso_support
from tests.runtime.org_support import (
    ADMIN,
    DEV,
    ORG_EXTERNAL_ID,
    OUTSIDER,
    VIEWER,
    as_user,
    register_org_account,
)
from tests.runtime.sso_support import PERMISSION_SET_ROLE, SSO_TOKEN
from tests.runtime.support import (
    AGENT,
    CUSTOMER_ACCOUNT,
    CUSTOMER_REGION,
    PREFIX,
    REGION,
    TABLES,
    ApiCall,
    Customer,
    Platform,
    audit_records,
    aws_error,
    stopped_task,
)
from tests.runtime.test_org_agents import counted_calls

Hooks = Any
ORG_AGENT = {**AGENT, "team": "payments", "project": "checkout-bot"}
SSO_REGION = "eu-west-1"
SECOND_ACCOUNT = "333333333333"


# ---- the organisation's targets --------------------------------------------------------------


def register_account(
    platform: Platform, organization_id: str, customer: Customer, *, account_id: str | None = None
) -> None:
    """The customer's account (or `account_id`, with its network) registered to the
    organisation."""
    register_org_account(
        platform.client("dynamodb"),
        TABLES["ACCOUNTS_TABLE"],
        organization_id,
        account_id=account_id or customer.account_id,
        region=customer.region,
        cluster_arn=customer.cluster_arn,
        subnet_ids=customer.subnet_ids,
        security_group_id=customer.security_group_id,
    )


@pytest.fixture
def account(platform: Platform, org_id: str, customer: Customer) -> Customer:
    """The organisation's one registered account: the customer's (111111111111)."""
    register_account(platform, org_id, customer)
    return customer


def configure_sso(platform: Platform, organization_id: str, account_id: str) -> None:
    sso_support.configure_sso(
        platform.client("dynamodb"),
        TABLES["ORGANIZATIONS_TABLE"],
        organization_id,
        account_id=account_id,
        sso_region=SSO_REGION,
    )


@pytest.fixture
def sso_key(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> str:
    """The platform's KMS key for SSO tokens, in moto."""
    kms = boto3.client("kms", region_name=REGION)
    arn = str(kms.create_key(Description="sso tokens")["KeyMetadata"]["Arn"])
    monkeypatch.setenv("SSO_TOKEN_KEY_ARN", arn)
    wiring.reset(keep_clients=True)
    return arn


def start_session(
    platform: Platform, key: str, organization_id: str, user: str, *, expires_in: int = 3600
) -> None:
    sso_support.start_session(
        platform.client("dynamodb"),
        TABLES["ORGANIZATIONS_TABLE"],
        boto3.client("kms", region_name=REGION),
        key,
        organization_id,
        user,
        sso_region=SSO_REGION,
        expires_in=expires_in,
    )


@pytest.fixture
def sso() -> Iterator[Stubber]:
    """IAM Identity Center's `sso` client (moto has none)."""
    with Stubber(clients.client_in("sso", SSO_REGION)) as stub:
        yield stub


@pytest.fixture
def dev_session(platform: Platform, org_id: str, account: Customer, sso_key: str) -> None:
    """SSO configured for the registered account, and DEV's active session."""
    configure_sso(platform, org_id, CUSTOMER_ACCOUNT)
    start_session(platform, sso_key, org_id, DEV)


def role_credentials(stub: Stubber, customer: Customer, *, account_id: str) -> None:
    """GetRoleCredentials answers credentials moto attributes to the customer's account."""
    stub.add_response(
        "get_role_credentials",
        sso_support.role_credentials(customer.credentials),
        {"accessToken": SSO_TOKEN, "accountId": account_id, "roleName": PERMISSION_SET_ROLE},
    )


# ---- helpers -------------------------------------------------------------------------------


@pytest.fixture
def org_id(org: dict[str, Any]) -> str:
    return str(org["organizationId"])


@pytest.fixture
def dev_agent(api: ApiCall, org: dict[str, Any]) -> str:
    answer = as_user(api, DEV)("POST", "/agents", body=ORG_AGENT)
    assert answer.status == 201, answer.body
    return str(answer.body["agentId"])


def deploy(api: ApiCall, agent_id: str, user: str = DEV, **body: Any) -> Any:
    headers = {"Idempotency-Key": body.pop("key")} if "key" in body else {}
    return as_user(api, user)("POST", f"/agents/{agent_id}/deployments", body=body, headers=headers)


def deploy_to(agent_id: str, account_id: str | None, user: str = DEV) -> dict[str, Any]:
    """A deployment naming `accountId` (the route passes `body.accountId` once wired)."""
    return wiring.api_services().launches.deploy(
        Caller(user), agent_id, None, None, account_id=account_id
    )


def customer_tasks(customer: Customer) -> list[dict[str, Any]]:
    ecs = customer.client("ecs")
    arns = ecs.list_tasks(cluster=customer.cluster_arn)["taskArns"]
    if not arns:
        return []
    return list(
        ecs.describe_tasks(cluster=customer.cluster_arn, tasks=arns, include=["TAGS"])["tasks"]
    )


def run_item(platform: Platform, run_id: str) -> dict[str, Any]:
    [run] = [r for r in platform.table_items("RUNS_TABLE") if r["runId"] == run_id]
    return run


def assume_role_requests(aws_hooks: Hooks) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = []
    aws_hooks("provide-client-params.sts.AssumeRole", lambda params, **_: requests.append(params))
    return requests


# ---- through the organisation's account role -----------------------------------------------


def test_a_member_deploys_into_the_organisations_account(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    answer = deploy(api, dev_agent, input="Go")

    assert answer.status == 202, answer.body
    assert (answer.body["target"], answer.body["accountId"], answer.body["region"]) == (
        "enterprise",
        CUSTOMER_ACCOUNT,
        CUSTOMER_REGION,
    )
    [task] = customer_tasks(account)
    assert task["startedBy"] == answer.body["runId"]
    assert platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"] == []
    run = run_item(platform, answer.body["runId"])
    assert (run["target"], run["via"], run["organizationId"]) == (
        "enterprise",
        "account-role",
        org_id,
    )
    assert run["taskArn"] == task["taskArn"]
    assert "period" not in run  # not on the free quota


def test_the_task_carries_the_cost_allocation_tags(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    run_id = deploy(api, dev_agent).body["runId"]

    [task] = customer_tasks(account)
    assert {t["key"]: t["value"] for t in task["tags"]} == {
        "Project": PREFIX,
        "userId": DEV,
        "agentId": dev_agent,
        "runId": run_id,
        "organization": org_id,
        "team": "payments",
        "project": "checkout-bot",
        "user": DEV,
        "agent": dev_agent,
        "run": run_id,
    }


def test_the_deployer_role_is_assumed_with_the_external_id_and_the_member_as_source_identity(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    aws_hooks: Hooks,
) -> None:
    requests = assume_role_requests(aws_hooks)

    assert deploy(api, dev_agent).status == 202

    [deployer] = [r for r in requests if r["RoleArn"] == account.role_arn]
    assert deployer["ExternalId"] == ORG_EXTERNAL_ID
    assert deployer["SourceIdentity"] == DEV
    # Hop one, the launcher role, carries no source identity (its session serves everyone).
    assert all("SourceIdentity" not in r for r in requests if r is not deployer)


def test_the_revision_is_registered_with_the_accounts_own_roles_and_then_deleted(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    aws_hooks: Hooks,
) -> None:
    registered: list[dict[str, Any]] = []
    aws_hooks(
        "provide-client-params.ecs.RegisterTaskDefinition",
        lambda params, **_: registered.append(params),
    )

    assert deploy(api, dev_agent).status == 202

    [request] = registered
    assert request["family"] == f"{PREFIX}-agent-runner"
    assert request["executionRoleArn"] == (
        f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/{PREFIX}-task-execution"
    )
    assert request["taskRoleArn"] == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/{PREFIX}-agent-task"
    options = request["containerDefinitions"][0]["logConfiguration"]["options"]
    assert options["awslogs-group"] == f"/{PREFIX}/agent-runs"
    ecs = account.client("ecs")
    for status in ("ACTIVE", "INACTIVE"):
        listed = ecs.list_task_definitions(familyPrefix=f"{PREFIX}-agent-runner", status=status)
        assert listed["taskDefinitionArns"] == [], status


def test_an_enterprise_deployment_is_audited_in_the_members_and_the_organisations_trail(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    run_id = deploy(api, dev_agent).body["runId"]

    records = audit_records(platform, "run.deploy")
    assert sorted(r["scope"] for r in records) == sorted([f"user#{DEV}", f"org#{org_id}"])
    assert len({r["eventId"] for r in records}) == 1
    for record in records:
        assert (record["result"], record["runId"], record["agentId"]) == (
            "success",
            run_id,
            dev_agent,
        )
        assert (record["accountId"], record["region"], record["via"]) == (
            CUSTOMER_ACCOUNT,
            CUSTOMER_REGION,
            "account-role",
        )
    admin_trail = as_user(api, ADMIN)("GET", "/org/audit", query={"action": "run.deploy"})
    assert [e["target"] for e in admin_trail.body["events"]] == [run_id]


def test_a_retried_enterprise_deployment_is_the_same_run(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    first = deploy(api, dev_agent, key="ent-1")
    again = deploy(api, dev_agent, key="ent-1")

    assert again.status == 202 and again.body["runId"] == first.body["runId"]
    assert len(customer_tasks(account)) == 1


def test_a_refused_run_task_fails_the_run_with_422_and_leaves_no_revision(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    aws_hooks: Hooks,
) -> None:
    aws_hooks("before-call.ecs.RunTask", aws_error("AccessDeniedException"))

    answer = deploy(api, dev_agent, key="refused")

    assert (answer.status, answer.error_code) == (422, "DEPLOY_FAILED")
    assert "RunTask failed with AccessDeniedException" in answer.body["error"]["message"]
    [run] = platform.table_items("RUNS_TABLE")
    assert run["status"] == "FAILED" and "RunTask" in run["stopReason"]
    assert "taskArn" not in run
    listed = account.client("ecs").list_task_definitions(familyPrefix=f"{PREFIX}-agent-runner")
    assert listed["taskDefinitionArns"] == []
    [failure] = [r for r in audit_records(platform, "run.deploy") if r["scope"] == f"org#{org_id}"]
    assert failure["result"] == "failure"
    assert deploy(api, dev_agent, key="refused").error_code == "DEPLOY_FAILED"


def test_a_role_the_platform_can_no_longer_assume_names_the_account(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    aws_hooks: Hooks,
) -> None:
    aws_hooks(
        "before-call.sts.AssumeRole",
        aws_error("AccessDenied", when=lambda p: "deployer" in json.dumps(p["body"], default=str)),
    )

    answer = deploy(api, dev_agent)

    assert (answer.status, answer.error_code) == (422, "DEPLOY_FAILED")
    assert f"deployer role in account {CUSTOMER_ACCOUNT}" in answer.body["error"]["message"]
    [run] = platform.table_items("RUNS_TABLE")
    assert run["status"] == "FAILED"


# ---- which account ------------------------------------------------------------------------


def test_several_accounts_without_an_account_id_are_400_naming_them(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    register_account(platform, org_id, account, account_id=SECOND_ACCOUNT)

    answer = deploy(api, dev_agent)

    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")
    assert CUSTOMER_ACCOUNT in answer.body["error"]["message"]
    assert SECOND_ACCOUNT in answer.body["error"]["message"]
    assert platform.table_items("RUNS_TABLE") == []


def test_an_account_id_chooses_among_the_organisations_accounts(
    platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    register_account(platform, org_id, account, account_id=SECOND_ACCOUNT)

    run = deploy_to(dev_agent, CUSTOMER_ACCOUNT)

    assert (run["target"], run["accountId"], run["status"]) == (
        "enterprise",
        CUSTOMER_ACCOUNT,
        "PENDING",
    )


def test_an_account_the_organisation_has_not_registered_is_404(
    platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    from agent_builder.errors import OrgAccountNotFound

    with pytest.raises(OrgAccountNotFound, match=SECOND_ACCOUNT):
        deploy_to(dev_agent, SECOND_ACCOUNT)
    assert platform.table_items("RUNS_TABLE") == []


def test_an_account_id_is_for_organisation_deployments_only(api: ApiCall, agent_id: str) -> None:
    from agent_builder.errors import InvalidInput

    with pytest.raises(InvalidInput, match="accountId"):
        deploy_to(agent_id, CUSTOMER_ACCOUNT, user="6f1d2c3b-0000-4000-8000-00000000a11c")


def test_without_any_target_the_member_is_told_what_to_do(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str
) -> None:
    answer = deploy(api, dev_agent)

    assert (answer.status, answer.error_code) == (409, "NO_ENTERPRISE_TARGET")
    assert platform.table_items("RUNS_TABLE") == []


def test_a_viewer_deploys_nothing(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    answer = deploy(api, dev_agent, user=VIEWER)

    assert (answer.status, answer.error_code) == (403, "ROLE_NOT_ALLOWED")
    assert customer_tasks(account) == []


# ---- regions --------------------------------------------------------------------------------


def test_the_default_region_is_the_accounts_and_is_held_to_the_allowed_regions(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    assert api("PATCH", "/org", body={"allowedRegions": ["us-west-2"]}).status == 200

    with counted_calls() as calls:
        answer = deploy(api, dev_agent)

    assert (answer.status, answer.error_code) == (403, "REGION_NOT_ALLOWED")
    assert CUSTOMER_REGION in answer.body["error"]["message"]
    assert {call.split(":")[0] for call in calls} == {"dynamodb"}  # before any other call
    assert customer_tasks(account) == []
    [refusal] = [
        r for r in audit_records(platform, "region.refused") if r["scope"] == f"org#{org_id}"
    ]
    assert refusal["region"] == CUSTOMER_REGION


def test_an_explicit_region_outside_the_allowed_ones_is_refused_before_any_aws_call(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    assert api("PATCH", "/org", body={"allowedRegions": [CUSTOMER_REGION]}).status == 200

    with counted_calls() as calls:
        answer = deploy(api, dev_agent, region="us-west-2")

    assert (answer.status, answer.error_code) == (403, "REGION_NOT_ALLOWED")
    assert {call.split(":")[0] for call in calls} == {"dynamodb"}
    assert platform.table_items("RUNS_TABLE") == []


def test_a_region_other_than_the_accounts_is_409_naming_it(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    answer = deploy(api, dev_agent, region="us-west-2")

    assert (answer.status, answer.error_code) == (409, "NO_ENTERPRISE_TARGET")
    assert f"runs agents in {CUSTOMER_REGION}" in answer.body["error"]["message"]
    assert platform.table_items("RUNS_TABLE") == []


def test_the_accounts_own_region_may_be_named(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    answer = deploy(api, dev_agent, region=CUSTOMER_REGION)

    assert answer.status == 202, answer.body
    assert answer.body["region"] == CUSTOMER_REGION


# ---- with the member's IAM Identity Center session ------------------------------------------


def test_with_an_active_session_the_member_deploys_as_their_permission_set(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    dev_session: None,
    sso: Stubber,
    aws_hooks: Hooks,
) -> None:
    role_credentials(sso, account, account_id=CUSTOMER_ACCOUNT)
    assumed = assume_role_requests(aws_hooks)

    answer = deploy(api, dev_agent)

    assert answer.status == 202, answer.body
    sso.assert_no_pending_responses()
    assert assumed == []  # no role of the platform's: the member's own credentials
    run = run_item(platform, answer.body["runId"])
    assert (run["via"], run["accountId"], run["region"]) == (
        "sso",
        CUSTOMER_ACCOUNT,
        CUSTOMER_REGION,
    )
    [task] = customer_tasks(account)
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert (tags["organization"], tags["user"], tags["run"]) == (org_id, DEV, run["runId"])
    [record] = [r for r in audit_records(platform, "run.deploy") if r["scope"] == f"org#{org_id}"]
    assert record["via"] == "sso"


def test_an_account_id_other_than_the_sessions_goes_through_the_account_role(
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    sso_key: str,
    sso: Stubber,
) -> None:
    configure_sso(platform, org_id, SECOND_ACCOUNT)
    start_session(platform, sso_key, org_id, DEV)

    run = deploy_to(dev_agent, CUSTOMER_ACCOUNT)

    assert run["accountId"] == CUSTOMER_ACCOUNT
    assert run_item(platform, run["runId"])["via"] == "account-role"


def test_a_session_whose_account_is_not_registered_is_409_saying_so(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    sso_key: str,
    sso: Stubber,
) -> None:
    configure_sso(platform, org_id, SECOND_ACCOUNT)
    start_session(platform, sso_key, org_id, DEV)

    answer = deploy(api, dev_agent)

    assert (answer.status, answer.error_code) == (409, "NO_ENTERPRISE_TARGET")
    message = answer.body["error"]["message"]
    assert SECOND_ACCOUNT in message and "/org/accounts/onboarding" in message
    assert "DELETE /org/sso/session" in message
    assert platform.table_items("RUNS_TABLE") == []


def test_an_expired_session_is_409_once_then_the_account_role_serves(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    sso_key: str,
    sso: Stubber,
) -> None:
    configure_sso(platform, org_id, CUSTOMER_ACCOUNT)
    start_session(platform, sso_key, org_id, DEV, expires_in=-1)

    expired = deploy(api, dev_agent)
    again = deploy(api, dev_agent)

    assert (expired.status, expired.error_code) == (409, "SSO_SESSION_EXPIRED")
    assert "/org/sso/device-authorization" in expired.body["error"]["message"]
    assert again.status == 202, again.body
    assert run_item(platform, again.body["runId"])["via"] == "account-role"
    assert len(platform.table_items("RUNS_TABLE")) == 1  # the refusal stored no run


def test_a_session_identity_center_refuses_fails_the_run_and_is_409(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    dev_session: None,
    sso: Stubber,
) -> None:
    sso.add_client_error(
        "get_role_credentials", service_error_code="UnauthorizedException", http_status_code=401
    )

    answer = deploy(api, dev_agent, key="signed-out")

    assert (answer.status, answer.error_code) == (409, "SSO_SESSION_EXPIRED")
    [run] = platform.table_items("RUNS_TABLE")
    assert (run["status"], run["via"]) == ("FAILED", "sso")
    assert customer_tasks(account) == []
    # The session is gone: the next deployment goes through the organisation's role.
    assert deploy(api, dev_agent).status == 202


# ---- reading an organisation's runs ---------------------------------------------------------


def test_another_member_follows_the_run_through_the_role_as_themselves(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    aws_hooks: Hooks,
) -> None:
    run_id = deploy(api, dev_agent).body["runId"]
    [task] = customer_tasks(account)
    requests = assume_role_requests(aws_hooks)
    aws_hooks("before-call.ecs.DescribeTasks", stopped_task(task["taskArn"]))

    answer = as_user(api, VIEWER)("GET", f"/runs/{run_id}")

    assert answer.status == 200
    assert (answer.body["status"], answer.body["exitCode"]) == ("STOPPED", 0)
    [deployer] = [r for r in requests if r["RoleArn"] == account.role_arn]
    assert deployer["SourceIdentity"] == VIEWER  # the reader, not the launcher
    assert run_item(platform, run_id)["status"] == "STOPPED"


def test_another_member_reads_the_logs_from_the_organisations_account(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    run_id = deploy(api, dev_agent).body["runId"]
    [task] = customer_tasks(account)
    logs = account.client("logs")
    stream = f"runs/runner/{task['taskArn'].rsplit('/', 1)[-1]}"
    logs.create_log_stream(logGroupName=account.log_group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=account.log_group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(datetime.now(UTC).timestamp() * 1000), "message": "42"}],
    )

    answer = as_user(api, ADMIN)("GET", f"/runs/{run_id}/logs")

    assert answer.status == 200, answer.body
    assert [line["message"] for line in answer.body["lines"]] == ["42"]


def test_an_sso_run_is_read_with_the_readers_own_session(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    sso_key: str,
    dev_session: None,
    sso: Stubber,
    aws_hooks: Hooks,
) -> None:
    role_credentials(sso, account, account_id=CUSTOMER_ACCOUNT)
    run_id = deploy(api, dev_agent).body["runId"]
    [task] = customer_tasks(account)
    start_session(platform, sso_key, org_id, ADMIN)
    sso.add_response(
        "get_role_credentials",
        {
            "roleCredentials": {
                "accessKeyId": account.credentials["AccessKeyId"],
                "secretAccessKey": account.credentials["SecretAccessKey"],
                "sessionToken": account.credentials["SessionToken"],
                "expiration": int(datetime.now(UTC).timestamp() + 3600) * 1000,
            }
        },
        {"accessToken": SSO_TOKEN, "accountId": CUSTOMER_ACCOUNT, "roleName": PERMISSION_SET_ROLE},
    )
    assumed = assume_role_requests(aws_hooks)
    aws_hooks("before-call.ecs.DescribeTasks", stopped_task(task["taskArn"]))

    answer = as_user(api, ADMIN)("GET", f"/runs/{run_id}")

    assert answer.body["status"] == "STOPPED"
    sso.assert_no_pending_responses()
    assert assumed == []


def test_an_sso_run_without_the_readers_session_is_read_through_the_role(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    dev_session: None,
    sso: Stubber,
    aws_hooks: Hooks,
) -> None:
    role_credentials(sso, account, account_id=CUSTOMER_ACCOUNT)
    run_id = deploy(api, dev_agent).body["runId"]
    [task] = customer_tasks(account)
    requests = assume_role_requests(aws_hooks)
    aws_hooks("before-call.ecs.DescribeTasks", stopped_task(task["taskArn"]))

    answer = as_user(api, VIEWER)("GET", f"/runs/{run_id}")

    assert answer.body["status"] == "STOPPED"
    [deployer] = [r for r in requests if r["RoleArn"] == account.role_arn]
    assert deployer["SourceIdentity"] == VIEWER


def test_after_the_account_is_disconnected_the_run_stays_as_stored_and_its_logs_say_why(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    aws_hooks: Hooks,
) -> None:
    run_id = deploy(api, dev_agent).body["runId"]
    OrgAccountsRepository(platform.client("dynamodb"), TABLES["ACCOUNTS_TABLE"]).disconnect(
        org_id, CUSTOMER_ACCOUNT
    )
    described: list[Any] = []
    aws_hooks("provide-client-params.ecs.DescribeTasks", lambda params, **_: described.append(1))

    run = as_user(api, VIEWER)("GET", f"/runs/{run_id}")
    logs = as_user(api, VIEWER)("GET", f"/runs/{run_id}/logs")

    assert run.status == 200 and run.body["status"] == "PENDING"
    assert described == []
    assert (logs.status, logs.error_code) == (409, "ACCOUNT_NOT_CONNECTED")
    assert CUSTOMER_ACCOUNT in logs.body["error"]["message"]


def test_another_organisation_does_not_see_the_run(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:
    run_id = deploy(api, dev_agent).body["runId"]

    assert as_user(api, OUTSIDER)("GET", f"/runs/{run_id}").status == 404


# ---- what one deployment costs in AWS calls ---------------------------------------------------


def test_an_enterprise_deployment_through_the_account_role_makes_these_calls(
    api: ApiCall, platform: Platform, org_id: str, dev_agent: str, account: Customer
) -> None:

    with counted_calls() as calls:
        assert deploy(api, dev_agent).status == 202

    assert [call.split(":")[1] for call in calls] == [
        "BatchGetItem",  # the caller's agent key and profile
        "GetItem",  # the organisation's agent
        "GetItem",  # the SSO settings (none)
        "GetItem",  # the organisation's accounts
        "GetItem",  # its allowed regions (the default region is checked too)
        "TransactWriteItems",  # the run and the launch window
        "AssumeRole",  # the launcher role (cached for later launches)
        "AssumeRole",  # the organisation's deployer role
        "RegisterTaskDefinition",
        "RunTask",
        "DeregisterTaskDefinition",
        "DeleteTaskDefinitions",
        "UpdateItem",  # the run's task
        "TransactWriteItems",  # run.deploy in both trails
    ]


def test_an_enterprise_deployment_with_an_sso_session_makes_these_calls(
    api: ApiCall,
    platform: Platform,
    org_id: str,
    dev_agent: str,
    account: Customer,
    dev_session: None,
) -> None:

    # The counting hook is on the clients made once it is registered: the stub's too.
    with counted_calls() as calls, Stubber(clients.client_in("sso", SSO_REGION)) as sso:
        role_credentials(sso, account, account_id=CUSTOMER_ACCOUNT)
        assert deploy(api, dev_agent).status == 202

    assert [call.split(":")[1] for call in calls] == [
        "BatchGetItem",
        "GetItem",  # the organisation's agent
        "GetItem",  # the SSO settings
        "GetItem",  # the member's session
        "GetItem",  # the organisation's accounts (the session's account's network)
        "GetItem",  # its allowed regions
        "TransactWriteItems",
        "Decrypt",  # the session's token (KMS)
        "GetRoleCredentials",
        "RegisterTaskDefinition",
        "RunTask",
        "DeregisterTaskDefinition",
        "DeleteTaskDefinitions",
        "UpdateItem",
        "TransactWriteItems",
    ]
