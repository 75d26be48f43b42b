"""Tier 3 set-up and deployments end to end over HTTP against local mode.

The admin founds the organisation, configures SSO (a pasted IAM Identity Center SAML
metadata document, the organisation's e-mail domain) and gets the organisation's
onboarding link, which a second emulated AWS account runs (what the StackSet does in
each account: the customer template with the organisation's External ID and
registration token); it registers under the organisation. A user of the organisation's
domain signs in through the organisation's SAML IdP and is a developer at once; a
viewer is invited. The developer completes the IAM Identity Center device flow through
the local approval page and deploys into the organisation's account: the task runs
there with the cost-allocation tags. A region the organisation does not allow is 403;
the viewer launches nothing; another organisation's admin sees 404 for all of it; the
admin reads all of it in /org/audit.
"""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local_mode.harness import Answer, LocalMode
from tests.e2e.conftest import running_local_mode
from tests.runtime.sso_support import START_URL, metadata_xml

pytestmark = pytest.mark.e2e

ORG_ACCOUNT = "333344445555"
AGENT = {
    "name": "org-deployer",
    "model": "amazon.nova-micro-v1:0",
    "instructions": "Answer in one short paragraph.",
    "team": "payments",
    "project": "checkout",
}


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    """Local mode with members' IAM Identity Center sessions on (their KMS key exists)."""
    yield from running_local_mode(tmp_path_factory, "enterpriseSso=true")


class Member:
    def __init__(self, local: LocalMode, email: str, provider: str | None = None) -> None:
        self.local = local
        self.email = email
        self.token = local.sign_in(email, provider)
        me = self.call("GET", "/me")
        assert me.status == 200, me.body
        self.user_id = str(me.body["userId"])

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return self.local.request(method, path, token=self.token, body=body)


def approve(local: LocalMode, user_code: str) -> None:
    """What the member does on IAM Identity Center's page: Approve (the local stand-in)."""
    form = urllib.parse.urlencode({"user_code": user_code, "decision": "approve"}).encode()
    request = urllib.request.Request(f"{local.url}/_local/sso/approve", data=form)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback http)
        assert answer.status == 200


def wait_for(member: Member, path: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = member.call("GET", path)
        assert answer.status == 200, answer.body
        if done(answer.body):
            return dict(answer.body)
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never got there: {answer.body}")
        time.sleep(0.5)


def test_an_organisation_deploys_into_its_own_account_with_sso(local_mode: LocalMode) -> None:
    from local_mode.customer import customer_session, launch_customer_stack

    region = local_mode.info["region"]
    admin = Member(local_mode, "admin@acme.example")
    founded = admin.call("POST", "/org", {"name": "Acme"})
    assert founded.status == 201, founded.body
    org_id = founded.body["organizationId"]
    assert admin.call("PATCH", "/org", {"allowedRegions": [region]}).status == 200

    # SSO: the organisation's IdP, routed by its e-mail domain.
    configured = admin.call(
        "PUT",
        "/org/sso",
        {
            "samlMetadataXml": metadata_xml(),
            "emailDomains": ["acme.example"],
            "startUrl": START_URL,
            "ssoRegion": region,
            "accountId": ORG_ACCOUNT,
            "permissionSetRole": "agent-builder-deployer",
        },
    )
    assert configured.status == 200, configured.body
    assert configured.body["providerName"] == f"org-{org_id}"

    # The organisation's account: the StackSet's stack instance, registered under it.
    onboarding = admin.call("POST", "/org/accounts/onboarding", {"region": region})
    assert onboarding.status == 200, onboarding.body
    launch_customer_stack(
        api_url=local_mode.url,
        account_id=ORG_ACCOUNT,
        launch_stack_url=onboarding.body["launchStackUrl"],
    )
    accounts = admin.call("GET", "/org/accounts").body["accounts"]
    assert [(a["accountId"], a["status"]) for a in accounts] == [(ORG_ACCOUNT, "connected")]

    # A first SSO sign-in makes a member with the organisation's default role.
    developer = Member(local_mode, "dev@acme.example", provider=f"org-{org_id}")
    me = developer.call("GET", "/me").body
    assert (me["organizationId"], me["role"], me["tier"]) == (org_id, "developer", "enterprise")
    invitation = admin.call(
        "POST", "/org/invitations", {"email": "vic@acme.example", "role": "viewer"}
    )
    viewer = Member(local_mode, "vic@acme.example")
    assert (
        viewer.call("POST", f"/org/invitations/{invitation.body['invitationId']}/accept").status
        == 200
    )

    agent = developer.call("POST", "/agents", AGENT)
    assert agent.status == 201, agent.body
    agent_id = agent.body["agentId"]
    refused = viewer.call("POST", f"/agents/{agent_id}/deployments", {"input": "hi"})
    assert (refused.status, refused.body["error"]["code"]) == (403, "ROLE_NOT_ALLOWED")
    assert viewer.call("POST", "/org/sso/device-authorization").status == 403

    # The developer's IAM Identity Center session: the device flow, approved.
    flow = developer.call("POST", "/org/sso/device-authorization")
    assert flow.status == 200, flow.body
    assert developer.call("GET", "/org/sso/session").body["status"] == "pending"
    approve(local_mode, flow.body["userCode"])
    session = wait_for(developer, "/org/sso/session", lambda body: body["status"] != "pending")
    assert session["status"] == "active", session

    far = developer.call("POST", f"/agents/{agent_id}/deployments", {"region": "ap-south-1"})
    assert (far.status, far.body["error"]["code"]) == (403, "REGION_NOT_ALLOWED")
    deployed = developer.call(
        "POST", f"/agents/{agent_id}/deployments", {"input": "Say hello.", "region": region}
    )
    assert deployed.status == 202, deployed.body
    assert (deployed.body["target"], deployed.body["accountId"]) == ("enterprise", ORG_ACCOUNT)
    run_id = deployed.body["runId"]
    run = wait_for(viewer, f"/runs/{run_id}", lambda body: body["status"] == "STOPPED")
    assert run["exitCode"] == 0, run

    # The task ran in the organisation's account, tagged for cost allocation.
    info = local_mode.info
    ecs = customer_session(info, ORG_ACCOUNT).client("ecs", endpoint_url=info["aws"])
    tasks = [
        task
        for cluster in ecs.list_clusters()["clusterArns"]
        for status in ("RUNNING", "STOPPED")
        for arn in ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]
        for task in ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"]
    ]
    (task,) = [t for t in tasks if {"key": "run", "value": run_id} in t.get("tags", [])]
    tags = {tag["key"]: tag["value"] for tag in task["tags"]}
    assert {k: tags.get(k) for k in ("organization", "team", "project", "user", "agent")} == {
        "organization": org_id,
        "team": "payments",
        "project": "checkout",
        "user": developer.user_id,
        "agent": agent_id,
    }

    # Another organisation sees none of it.
    outsider = Member(local_mode, "eve@globex.example")
    assert outsider.call("POST", "/org", {"name": "Globex"}).status == 201
    for method, path in (
        ("GET", f"/runs/{run_id}"),
        ("GET", f"/agents/{agent_id}"),
        ("DELETE", f"/org/accounts/{ORG_ACCOUNT}"),
    ):
        assert outsider.call(method, path).status in (404,), (method, path)
    assert outsider.call("GET", "/org/accounts").body == {"accounts": []}
    assert outsider.call("GET", "/org").body["sso"] is None

    # The admin reads all of it.
    trail = admin.call("GET", "/org/audit?limit=100")
    assert trail.status == 200, trail.body
    actions = {(e["action"], e["actorId"]) for e in trail.body["events"]}
    expected = {
        ("org.sso.configure", admin.user_id),
        ("org.accounts.onboarding", admin.user_id),
        ("org.sso.session.start", developer.user_id),
        ("org.sso.session.activate", developer.user_id),
        ("region.refused", developer.user_id),
        ("role.refused", viewer.user_id),
    }
    assert expected <= actions, sorted(actions)
    assert any(action == "org.account.connect" for action, _ in actions)
    assert any(action == "run.deploy" for action, _ in actions)
