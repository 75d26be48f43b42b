"""Organisation agents and runs: members share them, roles decide who creates, launches
and deletes; allowed regions; cost-allocation tags; enterprise deploys without a target."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.runtime.org_support import ADMIN, DEV, OUTSIDER, VIEWER, as_user, found
from tests.runtime.support import AGENT, ApiCall, Platform, audit_records

ORG_AGENT = {**AGENT, "team": "payments", "project": "checkout-bot"}


@contextlib.contextmanager
def counted_calls() -> Iterator[list[str]]:
    """The AWS calls made inside, as `service:Operation` (clients copy the session's hooks
    when they are made: they are made afresh on both sides)."""
    from agent_builder import clients, wiring

    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}:{model.name}")

    wiring.reset()
    clients._session().events.register("before-call.*.*", count)
    try:
        yield calls
    finally:
        clients._session().events.unregister("before-call.*.*", count)
        wiring.reset()


@pytest.fixture
def dev_agent(api: ApiCall, org: dict[str, Any]) -> str:
    answer = as_user(api, DEV)("POST", "/agents", body=ORG_AGENT)
    assert answer.status == 201, answer.body
    return str(answer.body["agentId"])


def test_a_members_agent_belongs_to_the_organisation(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    [item] = [a for a in platform.table_items("AGENTS_TABLE") if a["agentId"] == dev_agent]
    assert item["userId"] == f"org#{org['organizationId']}"
    assert (item["createdBy"], item["team"], item["project"]) == (DEV, "payments", "checkout-bot")
    for user in (ADMIN, DEV, VIEWER):
        listed = as_user(api, user)("GET", "/agents").body["agents"]
        assert [a["agentId"] for a in listed] == [dev_agent]
        one = as_user(api, user)("GET", f"/agents/{dev_agent}").body
        assert (one["team"], one["createdBy"]) == ("payments", DEV)
    records = audit_records(platform, "agent.create")
    assert {r["scope"] for r in records} == {f"user#{DEV}", f"org#{org['organizationId']}"}


def test_another_organisation_sees_nothing(
    api: ApiCall, org: dict[str, Any], dev_agent: str
) -> None:
    found(api, OUTSIDER, "Globex")
    outsider = as_user(api, OUTSIDER)
    run = as_user(api, DEV)("POST", f"/agents/{dev_agent}/tests", body={"input": "hi"}).body
    assert outsider("GET", "/agents").body["agents"] == []
    for method, path, body in (
        ("GET", f"/agents/{dev_agent}", None),
        ("DELETE", f"/agents/{dev_agent}", None),
        ("POST", f"/agents/{dev_agent}/tests", {"input": "hi"}),
        ("POST", f"/agents/{dev_agent}/deployments", {"input": "hi"}),
        ("GET", f"/runs/{run['runId']}", None),
        ("GET", f"/runs/{run['runId']}/logs", None),
    ):
        answer = outsider(method, path, body=body)
        assert answer.status == 404, (path, answer.body)
    assert outsider("GET", "/runs").body["runs"] == []


def test_a_freemium_users_agents_stay_theirs(api: ApiCall, org: dict[str, Any]) -> None:
    mine = as_user(api, OUTSIDER)("POST", "/agents", body=AGENT)
    assert mine.status == 201 and mine.body["createdBy"] is None
    assert api("GET", f"/agents/{mine.body['agentId']}").status == 404
    assert api("GET", "/agents").body["agents"] == []


def test_team_and_project_are_for_organisation_agents(api: ApiCall) -> None:
    answer = api("POST", "/agents", body=ORG_AGENT)
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")


def test_a_bad_team_is_refused(api: ApiCall, org: dict[str, Any]) -> None:
    answer = api("POST", "/agents", body={**AGENT, "team": "pay ments "})
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")


def test_every_member_reads_the_organisations_runs(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    run = as_user(api, DEV)("POST", f"/agents/{dev_agent}/tests", body={"input": "hi"})
    assert run.status == 202, run.body
    for user in (ADMIN, DEV, VIEWER):
        caller = as_user(api, user)
        assert [r["runId"] for r in caller("GET", "/runs").body["runs"]] == [run.body["runId"]]
        assert caller("GET", f"/runs/{run.body['runId']}").status == 200
        assert caller("GET", f"/runs/{run.body['runId']}/logs").status == 200
    launch = [r for r in audit_records(platform, "test.launch")]
    assert {r["scope"] for r in launch} == {f"user#{DEV}", f"org#{org['organizationId']}"}


def test_a_viewer_launches_nothing(
    api: ApiCall, platform: Platform, org: Any, dev_agent: str
) -> None:
    before = platform.table_items("RUNS_TABLE")
    viewer = as_user(api, VIEWER)
    for kind in ("tests", "deployments"):
        answer = viewer("POST", f"/agents/{dev_agent}/{kind}", body={"input": "hi"})
        assert (answer.status, answer.error_code) == (403, "ROLE_NOT_ALLOWED")
    assert platform.table_items("RUNS_TABLE") == before
    assert platform.tests_used(VIEWER) == 0
    refusals = [r for r in audit_records(platform, "role.refused") if r["scope"].startswith("org#")]
    assert len(refusals) == 2


def test_an_organisation_test_carries_the_cost_allocation_tags(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    run = as_user(api, DEV)("POST", f"/agents/{dev_agent}/tests", body={"input": "hi"}).body
    ecs = platform.client("ecs")
    [task] = ecs.list_tasks(cluster=platform.cluster_arn)["taskArns"]
    tags = {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=task)["tags"]}
    assert {k: tags[k] for k in ("organization", "team", "project", "user", "agent", "run")} == {
        "organization": org["organizationId"],
        "team": "payments",
        "project": "checkout-bot",
        "user": DEV,
        "agent": dev_agent,
        "run": run["runId"],
    }


def test_a_personal_test_has_no_organisation_tags(
    api: ApiCall, platform: Platform, agent_id: str
) -> None:
    assert api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).status == 202
    ecs = platform.client("ecs")
    [task] = ecs.list_tasks(cluster=platform.cluster_arn)["taskArns"]
    keys = {t["key"] for t in ecs.list_tags_for_resource(resourceArn=task)["tags"]}
    assert keys == {"Project", "userId", "agentId", "runId"}


def test_a_developer_deletes_their_own_an_admin_any(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    admins = api("POST", "/agents", body=AGENT).body["agentId"]
    dev = as_user(api, DEV)
    assert dev("DELETE", f"/agents/{admins}").error_code == "ROLE_NOT_ALLOWED"
    assert as_user(api, VIEWER)("DELETE", f"/agents/{dev_agent}").error_code == "ROLE_NOT_ALLOWED"
    assert dev("DELETE", f"/agents/{dev_agent}").status == 204
    assert api("DELETE", f"/agents/{admins}").status == 204
    counts = {p["userId"]: p.get("agentCount") for p in platform.table_items("PROFILES_TABLE")}
    assert (counts[ADMIN], counts[DEV]) == (0, 0)


def test_an_admin_deletes_a_developers_agent_and_their_count_goes_down(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    assert api("DELETE", f"/agents/{dev_agent}").status == 204
    [profile] = [p for p in platform.table_items("PROFILES_TABLE") if p["userId"] == DEV]
    assert profile["agentCount"] == 0


# ---- enterprise deployments -----------------------------------------------------------------


def test_an_enterprise_deploy_without_a_target_says_what_to_do(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    before = platform.table_items("RUNS_TABLE")
    answer = as_user(api, DEV)("POST", f"/agents/{dev_agent}/deployments", body={})
    assert (answer.status, answer.error_code) == (409, "NO_ENTERPRISE_TARGET")
    assert "/org/accounts/onboarding" in answer.body["error"]["message"]
    assert "/org/sso/device-authorization" in answer.body["error"]["message"]
    assert platform.table_items("RUNS_TABLE") == before


def test_a_region_outside_the_allowed_ones_is_refused_before_any_aws_call(
    api: ApiCall, platform: Platform, org: dict[str, Any], dev_agent: str
) -> None:
    assert api("PATCH", "/org", body={"allowedRegions": ["eu-west-1"]}).status == 200
    with counted_calls() as calls:
        answer = as_user(api, DEV)(
            "POST", f"/agents/{dev_agent}/deployments", body={"region": "us-west-2"}
        )
    assert (answer.status, answer.error_code) == (403, "REGION_NOT_ALLOWED")
    assert {call.split(":")[0] for call in calls} == {"dynamodb"}
    [refusal] = [
        r for r in audit_records(platform, "region.refused") if r["scope"].startswith("org#")
    ]
    assert (refusal["region"], refusal["userId"], refusal["result"]) == (
        "us-west-2",
        DEV,
        "refused",
    )
    allowed = as_user(api, DEV)(
        "POST", f"/agents/{dev_agent}/deployments", body={"region": "eu-west-1"}
    )
    assert allowed.error_code == "NO_ENTERPRISE_TARGET"


def test_region_is_for_organisation_deployments_only(api: ApiCall, agent_id: str) -> None:
    answer = api("POST", f"/agents/{agent_id}/deployments", body={"region": "eu-west-1"})
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")
    bad = api("POST", f"/agents/{agent_id}/deployments", body={"region": "moon-1"})
    assert (bad.status, bad.error_code) == (400, "INVALID_REGION")


def test_a_freemium_test_launch_still_makes_five_aws_calls(api: ApiCall, agent_id: str) -> None:
    with counted_calls() as calls:
        assert api("POST", f"/agents/{agent_id}/tests", body={"input": "hi"}).status == 202
    assert [call.split(":")[1] for call in calls] == [
        "BatchGetItem",
        "TransactWriteItems",
        "PutObject",
        "RunTask",
        "CreateSchedule",
    ]


def test_a_members_test_launch_makes_six(api: ApiCall, org: dict[str, Any], dev_agent: str) -> None:
    with counted_calls() as calls:
        answer = as_user(api, DEV)("POST", f"/agents/{dev_agent}/tests", body={"input": "hi"})
    assert answer.status == 202
    assert [call.split(":")[1] for call in calls] == [
        "BatchGetItem",
        "GetItem",
        "TransactWriteItems",
        "PutObject",
        "RunTask",
        "CreateSchedule",
    ]
