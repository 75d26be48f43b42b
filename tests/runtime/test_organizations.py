"""Organisations (Tier 3): founding, members, roles, invitations, leaving, the org trail.

Every route's success and each refusal: 403 ROLE_NOT_ALLOWED per role, 404 across
organisations, 409 LAST_ADMIN and ALREADY_IN_ORGANIZATION, 410 for an expired invitation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent_builder import timeutil
from tests.runtime.org_support import (
    ADMIN,
    DEV,
    EMAILS,
    OUTSIDER,
    VIEWER,
    as_user,
    found,
    invite,
    join,
)
from tests.runtime.support import (
    TABLES,
    ApiCall,
    Platform,
    audit_records,
    tier_of,
)


def profile(platform: Platform, user: str) -> dict[str, Any]:
    return next(p for p in platform.table_items("PROFILES_TABLE") if p["userId"] == user)


# ---- founding ---------------------------------------------------------------------------


def test_founder_becomes_admin_and_enterprise(api: ApiCall, platform: Platform) -> None:
    organization = found(api)
    assert organization["role"] == "admin" and organization["name"] == "Acme"
    me = api("GET", "/me").body
    assert me["organizationId"] == organization["organizationId"]
    assert (me["role"], me["tier"]) == ("admin", "enterprise")
    records = audit_records(platform, "org.create")
    assert {r["scope"] for r in records} == {
        f"user#{ADMIN}",
        f"org#{organization['organizationId']}",
    }
    assert len({r["eventId"] for r in records}) == 1


def test_one_organisation_per_user(api: ApiCall, platform: Platform) -> None:
    found(api)
    answer = api("POST", "/org", body={"name": "Second"})
    assert (answer.status, answer.error_code) == (409, "ALREADY_IN_ORGANIZATION")
    items = platform.table_items("ORGANIZATIONS_TABLE")
    assert len([i for i in items if i["item"] == "org"]) == 1


def test_owner_can_close_organisation_creation(
    api: ApiCall, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_builder import wiring

    monkeypatch.setenv("ALLOW_ORGANIZATION_CREATION", "false")
    wiring.reset(keep_clients=True)
    answer = api("POST", "/org", body={"name": "Acme"})
    assert (answer.status, answer.error_code) == (403, "ORGANIZATION_CREATION_CLOSED")
    assert platform.table_items("ORGANIZATIONS_TABLE") == []


def test_org_routes_answer_not_in_organization_to_a_non_member(api: ApiCall) -> None:
    for method, path in (("GET", "/org"), ("GET", "/org/members"), ("GET", "/org/audit")):
        answer = api(method, path)
        assert (answer.status, answer.error_code) == (404, "NOT_IN_ORGANIZATION"), path


# ---- reading and renaming ---------------------------------------------------------------


def test_every_member_reads_the_organisation_and_its_members(
    api: ApiCall, org: dict[str, Any]
) -> None:
    for user, role in ((ADMIN, "admin"), (DEV, "developer"), (VIEWER, "viewer")):
        answer = as_user(api, user)("GET", "/org")
        assert answer.status == 200 and answer.body["role"] == role
        members = as_user(api, user)("GET", "/org/members").body["members"]
        assert {(m["userId"], m["role"]) for m in members} == {
            (ADMIN, "admin"),
            (DEV, "developer"),
            (VIEWER, "viewer"),
        }
    assert {m["email"] for m in members} == {EMAILS[ADMIN], EMAILS[DEV], EMAILS[VIEWER]}


def test_members_page_with_next_token(api: ApiCall, org: dict[str, Any]) -> None:
    first = api("GET", "/org/members", query={"limit": "2"}).body
    assert len(first["members"]) == 2 and first["nextToken"]
    rest = api("GET", "/org/members", query={"limit": "2", "nextToken": first["nextToken"]}).body
    seen = {m["userId"] for m in first["members"] + rest["members"]}
    assert seen == {ADMIN, DEV, VIEWER}


def test_admin_renames_and_limits_regions(api: ApiCall, org: dict[str, Any]) -> None:
    answer = api(
        "PATCH",
        "/org",
        body={"name": "Acme Corp", "allowedRegions": ["eu-west-1", "eu-central-1"]},
    )
    assert answer.status == 200, answer.body
    assert answer.body["name"] == "Acme Corp"
    assert answer.body["allowedRegions"] == ["eu-central-1", "eu-west-1"]
    cleared = api("PATCH", "/org", body={"allowedRegions": None, "defaultRole": "viewer"}).body
    assert cleared["allowedRegions"] is None and cleared["defaultRole"] == "viewer"


def test_allowed_regions_must_be_real_regions(api: ApiCall, org: dict[str, Any]) -> None:
    answer = api("PATCH", "/org", body={"allowedRegions": ["eu-west-1", "mars-north-1"]})
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")
    assert "mars-north-1" in answer.body["error"]["message"]
    assert api("GET", "/org").body["allowedRegions"] is None


@pytest.mark.parametrize(
    "body",
    [{}, {"name": None}, {"defaultRole": None}, {"allowedRegions": [""], "name": None}],
)
def test_an_empty_or_null_patch_is_refused(
    api: ApiCall, org: dict[str, Any], body: dict[str, Any]
) -> None:
    answer = api("PATCH", "/org", body=body)
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")
    assert api("GET", "/org").body["name"] == "Acme"


# ---- the policy: 403 per role -----------------------------------------------------------

ADMIN_ONLY = (
    ("PATCH", "/org", {"name": "Mine"}),
    ("PUT", f"/org/members/{ADMIN}", {"role": "viewer"}),
    ("DELETE", f"/org/members/{ADMIN}", None),
    ("POST", "/org/invitations", {"email": "x@example.com", "role": "viewer"}),
    ("GET", "/org/invitations", None),
    ("DELETE", "/org/invitations/6f1d2c3b-0000-4000-8000-000000000000", None),
    ("GET", "/org/audit", None),
)


@pytest.mark.parametrize("user", [DEV, VIEWER])
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_admin_routes_refuse_developers_and_viewers(
    api: ApiCall,
    platform: Platform,
    org: dict[str, Any],
    user: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    before = platform.table_items("ORGANIZATIONS_TABLE")
    answer = as_user(api, user)(method, path, body=body)
    assert (answer.status, answer.error_code) == (403, "ROLE_NOT_ALLOWED")
    assert platform.table_items("ORGANIZATIONS_TABLE") == before
    [refusal] = [
        r
        for r in audit_records(platform, "role.refused")
        if r["scope"] == f"org#{org['organizationId']}"
    ]
    assert (refusal["userId"], refusal["result"], refusal["code"]) == (
        user,
        "refused",
        "ROLE_NOT_ALLOWED",
    )


def test_a_viewer_cannot_create_agents(api: ApiCall, org: dict[str, Any]) -> None:
    from tests.runtime.support import AGENT

    answer = as_user(api, VIEWER)("POST", "/agents", body=AGENT)
    assert (answer.status, answer.error_code) == (403, "ROLE_NOT_ALLOWED")


def test_a_role_change_takes_effect_on_the_next_request(api: ApiCall, org: dict[str, Any]) -> None:
    assert as_user(api, DEV)("GET", "/org/invitations").status == 403
    assert api("PUT", f"/org/members/{DEV}", body={"role": "admin"}).status == 200
    assert as_user(api, DEV)("GET", "/org/invitations").status == 200


# ---- another organisation: 404 ------------------------------------------------------------


def test_another_organisations_members_and_invitations_are_not_found(
    api: ApiCall, org: dict[str, Any]
) -> None:
    found(api, OUTSIDER, "Globex")
    outsider = as_user(api, OUTSIDER)
    pending = api("POST", "/org/invitations", body={"email": "new@example.com", "role": "viewer"})
    for method, path, body in (
        ("PUT", f"/org/members/{DEV}", {"role": "viewer"}),
        ("DELETE", f"/org/members/{DEV}", None),
        ("DELETE", f"/org/invitations/{pending.body['invitationId']}", None),
        ("POST", f"/org/invitations/{pending.body['invitationId']}/accept", None),
    ):
        answer = outsider(method, path, body=body)
        assert answer.status == 404, (path, answer.body)
    assert {m["userId"] for m in outsider("GET", "/org/members").body["members"]} == {OUTSIDER}
    assert api("GET", "/org/invitations").body["invitations"][0]["email"] == "new@example.com"


# ---- roles and the last admin -----------------------------------------------------------


def test_admin_changes_a_role_in_one_transaction(
    api: ApiCall, platform: Platform, org: Any
) -> None:
    answer = api("PUT", f"/org/members/{VIEWER}", body={"role": "developer"})
    assert answer.status == 200 and answer.body["role"] == "developer"
    assert profile(platform, VIEWER)["role"] == "developer"
    [record] = [
        r for r in audit_records(platform, "member.role_change") if r["scope"].startswith("org#")
    ]
    assert (record["target"], record["role"], record["previousRole"]) == (
        VIEWER,
        "developer",
        "viewer",
    )


def test_the_last_admin_cannot_be_demoted_or_leave(
    api: ApiCall, platform: Platform, org: dict[str, Any]
) -> None:
    demote = api("PUT", f"/org/members/{ADMIN}", body={"role": "developer"})
    assert (demote.status, demote.error_code) == (409, "LAST_ADMIN")
    leave = api("DELETE", f"/org/members/{ADMIN}")
    assert (leave.status, leave.error_code) == (409, "LAST_ADMIN")
    assert profile(platform, ADMIN)["role"] == "admin"
    # With a second admin, the first may step down.
    assert api("PUT", f"/org/members/{DEV}", body={"role": "admin"}).status == 200
    assert api("PUT", f"/org/members/{ADMIN}", body={"role": "viewer"}).status == 200
    assert as_user(api, DEV)("DELETE", f"/org/members/{DEV}").error_code == "LAST_ADMIN"


def test_unknown_member_is_not_found(api: ApiCall, org: dict[str, Any]) -> None:
    answer = api("PUT", f"/org/members/{OUTSIDER}", body={"role": "viewer"})
    assert (answer.status, answer.error_code) == (404, "MEMBER_NOT_FOUND")


def test_an_invalid_role_is_refused(api: ApiCall, org: dict[str, Any]) -> None:
    answer = api("PUT", f"/org/members/{DEV}", body={"role": "owner"})
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")


# ---- removal and leaving: tier follows membership ----------------------------------------


def test_admin_removes_a_member_who_returns_to_freemium(
    api: ApiCall, platform: Platform, org: dict[str, Any]
) -> None:
    assert api("DELETE", f"/org/members/{DEV}").status == 204
    removed = profile(platform, DEV)
    assert (removed["tier"], removed.get("organizationId"), removed.get("role")) == (
        "freemium",
        None,
        None,
    )
    assert as_user(api, DEV)("GET", "/org").error_code == "NOT_IN_ORGANIZATION"
    [record] = [
        r for r in audit_records(platform, "member.remove") if r["scope"].startswith("org#")
    ]
    assert record["target"] == DEV


def test_a_viewer_may_leave_but_not_remove_others(
    api: ApiCall, platform: Platform, org: dict[str, Any]
) -> None:
    viewer = as_user(api, VIEWER)
    assert viewer("DELETE", f"/org/members/{DEV}").error_code == "ROLE_NOT_ALLOWED"
    assert viewer("DELETE", f"/org/members/{VIEWER}").status == 204
    assert tier_of(platform, VIEWER) == "freemium"
    assert audit_records(platform, "member.leave")


def test_a_member_with_a_connected_account_returns_to_personal(
    api: ApiCall, platform: Platform, org: dict[str, Any]
) -> None:
    platform.client("dynamodb").put_item(
        TableName=TABLES["ACCOUNTS_TABLE"],
        Item={"userId": {"S": DEV}, "status": {"S": "connected"}, "externalId": {"S": "x" * 43}},
    )
    assert as_user(api, DEV)("DELETE", f"/org/members/{DEV}").status == 204
    assert tier_of(platform, DEV) == "personal"


def test_a_former_member_may_found_or_join_another(api: ApiCall, org: dict[str, Any]) -> None:
    assert as_user(api, DEV)("DELETE", f"/org/members/{DEV}").status == 204
    assert as_user(api, DEV)("POST", "/org", body={"name": "Dev Inc"}).status == 201


# ---- invitations ------------------------------------------------------------------------


def test_invitation_is_listed_and_revoked(api: ApiCall, platform: Platform, org: Any) -> None:
    created = api("POST", "/org/invitations", body={"email": " New@Example.com ", "role": "viewer"})
    assert created.status == 201 and created.body["email"] == "new@example.com"
    expires = timeutil.parse_iso(created.body["expiresAt"]) - timeutil.utcnow()
    assert timedelta(days=6, hours=23) < expires <= timedelta(days=7)
    [listed] = api("GET", "/org/invitations").body["invitations"]
    assert listed["invitationId"] == created.body["invitationId"] and not listed["expired"]
    assert api("DELETE", f"/org/invitations/{listed['invitationId']}").status == 204
    assert api("GET", "/org/invitations").body["invitations"] == []
    again = api("DELETE", f"/org/invitations/{listed['invitationId']}")
    assert (again.status, again.error_code) == (404, "INVITATION_NOT_FOUND")


def test_invitation_for_another_email_is_not_found(api: ApiCall, org: dict[str, Any]) -> None:
    invitation = api(
        "POST", "/org/invitations", body={"email": "new@example.com", "role": "viewer"}
    )
    answer = as_user(api, OUTSIDER)(
        "POST", f"/org/invitations/{invitation.body['invitationId']}/accept"
    )
    assert (answer.status, answer.error_code) == (404, "INVITATION_NOT_FOUND")


def test_the_profiles_verified_email_is_what_matches(
    api: ApiCall, platform: Platform, org: dict[str, Any]
) -> None:
    """An access token has no e-mail: the profile's (written at sign-up) decides."""
    invitation = api(
        "POST", "/org/invitations", body={"email": "new@example.com", "role": "viewer"}
    )
    newcomer = "6f1d2c3b-0000-4000-8000-0000000000f0"
    platform.client("dynamodb").put_item(
        TableName=TABLES["PROFILES_TABLE"],
        Item={
            "userId": {"S": newcomer},
            "tier": {"S": "freemium"},
            "email": {"S": "new@example.com"},
            "createdAt": {"S": "2026-01-01T00:00:00.000Z"},
        },
    )
    path = f"/org/invitations/{invitation.body['invitationId']}/accept"
    answer = api("POST", path, user=newcomer, email=None)
    assert answer.status == 200, answer.body
    assert profile(platform, newcomer)["tier"] == "enterprise"


def test_an_expired_invitation_answers_410(
    api: ApiCall, platform: Platform, org: dict[str, Any]
) -> None:
    invitation = invite(api, OUTSIDER, "developer")
    dynamodb = platform.client("dynamodb")
    dynamodb.update_item(
        TableName=TABLES["ORGANIZATIONS_TABLE"],
        Key={
            "organizationId": {"S": org["organizationId"]},
            "item": {"S": f"invitation#{invitation}"},
        },
        UpdateExpression="SET expiresAtEpoch = :past",
        ExpressionAttributeValues={":past": {"N": str(timeutil.epoch(timeutil.utcnow()) - 1)}},
    )
    answer = as_user(api, OUTSIDER)("POST", f"/org/invitations/{invitation}/accept")
    assert (answer.status, answer.error_code) == (410, "INVITATION_EXPIRED")
    assert tier_of(platform, OUTSIDER) == "freemium"
    assert api("GET", "/org/invitations").body["invitations"][0]["expired"] is True


def test_a_member_of_another_organisation_cannot_accept(api: ApiCall, org: dict[str, Any]) -> None:
    found(api, OUTSIDER, "Globex")
    invitation = invite(api, OUTSIDER, "viewer")
    answer = as_user(api, OUTSIDER)("POST", f"/org/invitations/{invitation}/accept")
    assert (answer.status, answer.error_code) == (409, "ALREADY_IN_ORGANIZATION")


def test_an_invitation_is_used_once(api: ApiCall, platform: Platform, org: dict[str, Any]) -> None:
    invitation = invite(api, OUTSIDER, "viewer")
    outsider = as_user(api, OUTSIDER)
    assert outsider("POST", f"/org/invitations/{invitation}/accept").status == 200
    assert outsider("DELETE", f"/org/members/{OUTSIDER}").status == 204
    again = outsider("POST", f"/org/invitations/{invitation}/accept")
    assert again.status == 404


def test_an_admin_invitation_counts_a_second_admin(api: ApiCall, org: dict[str, Any]) -> None:
    join(api, OUTSIDER, "admin")
    # Two admins now: the founder may leave.
    assert api("DELETE", f"/org/members/{ADMIN}").status == 204


# ---- audit trails -------------------------------------------------------------------------


def test_admin_reads_the_organisation_trail_with_filters(api: ApiCall, org: dict[str, Any]) -> None:
    as_user(api, VIEWER)("POST", "/org/invitations", body={"email": "a@b.co", "role": "viewer"})
    trail = api("GET", "/org/audit").body["events"]
    actions = [e["action"] for e in trail]
    assert {"org.create", "invitation.create", "invitation.accept", "role.refused"} <= set(actions)
    assert trail == sorted(trail, key=lambda e: e["eventId"], reverse=True)
    accepted = api("GET", "/org/audit", query={"action": "invitation.accept"}).body["events"]
    assert {e["actorId"] for e in accepted} == {DEV, VIEWER}
    by_viewer = api("GET", "/org/audit", query={"actor": VIEWER}).body["events"]
    assert {e["action"] for e in by_viewer} == {"invitation.accept", "role.refused"}
    none = api("GET", "/org/audit", query={"to": "2000-01-01T00:00:00Z"}).body["events"]
    assert none == []
    everything = api("GET", "/org/audit", query={"from": "2000-01-01T00:00:00Z"}).body["events"]
    assert len(everything) == len(trail)


def test_org_trail_pages(api: ApiCall, org: dict[str, Any]) -> None:
    first = api("GET", "/org/audit", query={"limit": "2"}).body
    assert len(first["events"]) == 2 and first["nextToken"]
    second = api("GET", "/org/audit", query={"limit": "2", "nextToken": first["nextToken"]}).body
    assert not {e["eventId"] for e in first["events"]} & {e["eventId"] for e in second["events"]}


@pytest.mark.parametrize(
    "bound",
    ["yesterday", "2026-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_a_bad_time_bound_is_a_400(api: ApiCall, org: dict[str, Any], bound: str) -> None:
    answer = api("GET", "/org/audit", query={"from": bound})
    assert (answer.status, answer.error_code) == (400, "VALIDATION_ERROR")


def test_own_trail_holds_the_callers_actions_only(api: ApiCall, org: dict[str, Any]) -> None:
    own = as_user(api, DEV)("GET", "/audit").body["events"]
    assert {e["actorId"] for e in own} == {DEV}
    assert [e["action"] for e in own] == ["invitation.accept"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/aws-account/onboarding", {}),
        ("DELETE", "/aws-account", None),
    ],
)
def test_a_viewer_connects_no_account(
    api: ApiCall, org: dict[str, Any], method: str, path: str, body: Any
) -> None:
    answer = as_user(api, VIEWER)(method, path, body=body)
    assert (answer.status, answer.error_code) == (403, "ROLE_NOT_ALLOWED")


def test_a_caller_outside_any_organisation_keeps_every_personal_route(api: ApiCall) -> None:
    """The policy only narrows members: a freemium user's own routes are untouched."""
    assert api("POST", "/aws-account/onboarding", body={}).status == 200
    assert api("GET", "/audit").status == 200
