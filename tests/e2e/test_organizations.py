"""Tier 3 end to end over HTTP against local mode: an organisation, its roles, its trail.

The admin founds the organisation and invites a developer and a viewer, who accept (the
invitee's verified e-mail is their profile's); the viewer's launches are 403; a user of
another organisation sees 404 for everything of it; a deployment to a region the
organisation does not allow is 403; the admin reads all of it in /org/audit.
"""

from __future__ import annotations

from typing import Any

import pytest

from local_mode.harness import Answer, LocalMode

pytestmark = pytest.mark.e2e

AGENT = {
    "name": "org-greeter",
    "model": "amazon.nova-micro-v1:0",
    "instructions": "Answer in one short paragraph.",
    "team": "payments",
    "project": "checkout",
}


class Member:
    def __init__(self, local: LocalMode, email: str) -> None:
        self.local = local
        self.email = email
        self.token = local.sign_in(email)
        me = self.call("GET", "/me")
        assert me.status == 200, me.body
        self.user_id = str(me.body["userId"])

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return self.local.request(method, path, token=self.token, body=body)


def test_an_organisation_end_to_end(local_mode: LocalMode) -> None:
    admin = Member(local_mode, "admin@acme.example")
    founded = admin.call("POST", "/org", {"name": "Acme"})
    assert founded.status == 201, founded.body
    org_id = founded.body["organizationId"]
    assert admin.call("GET", "/me").body["role"] == "admin"

    invitations = {}
    for email, role in (("dev@acme.example", "developer"), ("viewer@acme.example", "viewer")):
        answer = admin.call("POST", "/org/invitations", {"email": email, "role": role})
        assert answer.status == 201, answer.body
        invitations[email] = answer.body["invitationId"]
    developer = Member(local_mode, "dev@acme.example")
    viewer = Member(local_mode, "viewer@acme.example")
    # Someone else cannot take the viewer's invitation.
    outsider = Member(local_mode, "eve@globex.example")
    stolen = outsider.call("POST", f"/org/invitations/{invitations[viewer.email]}/accept")
    assert stolen.status == 404, stolen.body
    for member in (developer, viewer):
        accepted = member.call("POST", f"/org/invitations/{invitations[member.email]}/accept")
        assert accepted.status == 200, accepted.body
        assert member.call("GET", "/me").body["tier"] == "enterprise"

    agent = developer.call("POST", "/agents", AGENT)
    assert agent.status == 201, agent.body
    agent_id = agent.body["agentId"]
    assert viewer.call("GET", f"/agents/{agent_id}").status == 200
    for kind in ("tests", "deployments"):
        refused = viewer.call("POST", f"/agents/{agent_id}/{kind}", {"input": "hi"})
        assert (refused.status, refused.body["error"]["code"]) == (403, "ROLE_NOT_ALLOWED")
    assert viewer.call("POST", "/agents", AGENT).status == 403

    run = developer.call("POST", f"/agents/{agent_id}/tests", {"input": "Say hello."})
    assert run.status == 202, run.body
    run_id = run.body["runId"]
    assert viewer.call("GET", f"/runs/{run_id}").status == 200

    assert admin.call("PATCH", "/org", {"allowedRegions": ["eu-west-1"]}).status == 200
    far = developer.call("POST", f"/agents/{agent_id}/deployments", {"region": "ap-south-1"})
    assert (far.status, far.body["error"]["code"]) == (403, "REGION_NOT_ALLOWED")
    near = developer.call("POST", f"/agents/{agent_id}/deployments", {"region": "eu-west-1"})
    assert (near.status, near.body["error"]["code"]) == (409, "NO_ENTERPRISE_TARGET")

    # Another organisation sees nothing of Acme's.
    assert outsider.call("POST", "/org", {"name": "Globex"}).status == 201
    for method, path, body in (
        ("GET", f"/agents/{agent_id}", None),
        ("DELETE", f"/agents/{agent_id}", None),
        ("POST", f"/agents/{agent_id}/tests", {"input": "hi"}),
        ("GET", f"/runs/{run_id}", None),
        ("GET", f"/runs/{run_id}/logs", None),
        ("PUT", f"/org/members/{developer.user_id}", {"role": "admin"}),
        ("DELETE", f"/org/members/{developer.user_id}", None),
        ("DELETE", f"/org/invitations/{invitations[viewer.email]}", None),
    ):
        answer = outsider.call(method, path, body)
        assert answer.status == 404, (method, path, answer.body)
    assert outsider.call("GET", "/agents").body["agents"] == []
    assert outsider.call("GET", "/runs").body["runs"] == []
    assert {m["userId"] for m in outsider.call("GET", "/org/members").body["members"]} == {
        outsider.user_id
    }

    # The last admin stays; the viewer cannot read the trail; the admin reads it all.
    assert admin.call("DELETE", f"/org/members/{admin.user_id}").status == 409
    assert viewer.call("GET", "/org/audit").status == 403
    trail = admin.call("GET", "/org/audit?limit=100")
    assert trail.status == 200, trail.body
    actions = [(e["action"], e["actorId"]) for e in trail.body["events"]]
    expected = {
        ("org.create", admin.user_id),
        ("invitation.create", admin.user_id),
        ("invitation.accept", developer.user_id),
        ("invitation.accept", viewer.user_id),
        ("agent.create", developer.user_id),
        ("role.refused", viewer.user_id),
        ("test.launch", developer.user_id),
        ("org.update", admin.user_id),
        ("region.refused", developer.user_id),
    }
    assert expected <= set(actions), sorted(set(actions))
    assert all(e["actorId"] != outsider.user_id for e in trail.body["events"])
    refusals = admin.call("GET", "/org/audit?action=role.refused").body["events"]
    # The viewer's test, deployment, agent and reading of the trail.
    assert len(refusals) == 4 and {e["result"] for e in refusals} == {"refused"}
    assert org_id
