"""End-to-end journeys over HTTP against local mode (a real subprocess, free ports).

The tests in this module share one local mode and run in order: the quota journey
spends the month's tests, and the last test shuts local mode down and checks that
nothing is left listening.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from local_mode.assembly import ROOT
from local_mode.harness import (
    HEALTHY_WITHIN_SECONDS,
    Answer,
    LocalMode,
    nothing_listens_on,
    stop_local_mode,
)
from tests.e2e.conftest import TESTS_PER_MONTH
from tests.scripts.conftest import load_script

smoke = load_script("smoke")

pytestmark = pytest.mark.e2e

AGENT = {
    "name": "greeter",
    "model": "amazon.nova-micro-v1:0",
    "instructions": "Answer in one short paragraph.",
}


def moto_signing_key() -> RSAKey:
    """The key the emulated Cognito signs with (moto ships it), to forge edge cases."""
    import moto.cognitoidp

    path = Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-private.json.gz"
    keys = json.loads(gzip.decompress(path.read_bytes()))  # one JWK
    return RSAKey.import_key(keys)


def forged_token(local: LocalMode, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.{local.info['region']}.amazonaws.com/{local.info['userPoolId']}",
        "sub": "00000000-0000-4000-8000-000000000001",
        # An access token, as the API takes: the web client and the API's scope.
        "client_id": local.info["clientId"],
        "token_use": "access",
        "scope": "openid email profile agent-builder-api/api",
        "username": "00000000-0000-4000-8000-000000000001",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, moto_signing_key())


def test_local_mode_is_healthy_within_a_minute(local_mode: LocalMode) -> None:
    assert local_mode.healthy_after < HEALTHY_WITHIN_SECONDS
    assert local_mode.info["aws"] == f"http://127.0.0.1:{local_mode.aws_port}"


def test_signed_in_user_gets_a_freemium_profile_with_the_configured_quota(
    local_mode: LocalMode,
) -> None:
    token = local_mode.sign_in("first@example.com")
    me = local_mode.request("GET", "/me", token=token)
    assert me.status == 200
    assert me.body["email"] == "first@example.com"
    assert me.body["tier"] == "freemium"
    assert me.body["usage"]["testsUsed"] == 0
    assert me.body["usage"]["testsLimit"] == TESTS_PER_MONTH


def test_signing_in_again_is_the_same_user(local_mode: LocalMode) -> None:
    first = local_mode.request("GET", "/me", token=local_mode.sign_in("same@example.com"))
    second = local_mode.request("GET", "/me", token=local_mode.sign_in("same@example.com"))
    assert first.body["userId"] == second.body["userId"]


@pytest.mark.parametrize(
    "case",
    [
        "absent",
        "not-a-jwt",
        "tampered",
        "expired",
        "other-audience",
        "without-the-api-scope",
        "other-issuer",
        "refresh-use",
    ],
)
def test_bad_tokens_answer_401_like_api_gateway(local_mode: LocalMode, case: str) -> None:
    good = local_mode.sign_in("victim@example.com")
    token: str | None = {
        "absent": lambda: None,
        "not-a-jwt": lambda: "not-a-token",
        "tampered": lambda: good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "expired": lambda: forged_token(local_mode, exp=int(time.time()) - 60),
        "other-audience": lambda: forged_token(local_mode, client_id="some-other-client"),
        "without-the-api-scope": lambda: forged_token(local_mode, scope="openid email"),
        "other-issuer": lambda: forged_token(
            local_mode, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"
        ),
        "refresh-use": lambda: forged_token(local_mode, token_use="refresh"),
    }[case]()
    answer = local_mode.request("GET", "/me", token=token)
    assert answer.status == 401
    assert answer.body == {"message": "Unauthorized"}


def test_a_forged_but_well_formed_token_passes_only_with_the_emulator_key(
    local_mode: LocalMode,
) -> None:
    # The positive control for the cases above: the same forging with nothing wrong works.
    assert local_mode.request("GET", "/me", token=forged_token(local_mode)).status == 200


def test_routes_the_api_does_not_have_answer_404_like_api_gateway(local_mode: LocalMode) -> None:
    token = local_mode.sign_in("first@example.com")
    for method, path in (
        ("GET", "/nope"),
        ("PATCH", "/me"),
        ("GET", "/agents/a/b/c"),
        ("GET", "//me"),
        ("GET", "/me/"),
        ("TRACE", "/me"),
        ("FOO", "/me"),
    ):
        answer = local_mode.request(method, path, token=token)
        assert (answer.status, answer.body) == (404, {"message": "Not Found"}), (method, path)


def test_a_percent_encoded_path_reaches_the_route_it_decodes_to(local_mode: LocalMode) -> None:
    token = local_mode.sign_in("encoded@example.com")
    assert local_mode.request("GET", "/%6De", token=token).body["email"] == "encoded@example.com"
    agent_id = local_mode.request("POST", "/agents", token=token, body=AGENT).body["agentId"]
    encoded = agent_id.replace("-", "%2D")
    assert encoded != agent_id
    answer = local_mode.request("GET", f"/agents/{encoded}", token=token)
    assert (answer.status, answer.body["agentId"]) == (200, agent_id)


def test_openapi_document_is_served_as_exported(local_mode: LocalMode) -> None:
    answer = local_mode.request("GET", "/_local/openapi.json")
    assert answer.status == 200
    assert answer.body == json.loads((ROOT / "dist" / "openapi.json").read_text())


def wait_for_run(local: LocalMode, token: str, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = local.request("GET", f"/runs/{run_id}", token=token).body
        if run.get("status") == status:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never reached {status}: {run}\n{local.log_tail()}")


def test_tests_run_to_stopped_with_logs_until_the_quota_is_spent(local_mode: LocalMode) -> None:
    token = local_mode.sign_in("tester@example.com")
    created = local_mode.request("POST", "/agents", token=token, body=AGENT)
    assert created.status == 201, created.body
    agent_id = created.body["agentId"]

    runs = []
    for number in range(TESTS_PER_MONTH):
        launched = local_mode.request(
            "POST", f"/agents/{agent_id}/tests", token=token, body={"input": f"hello {number}"}
        )
        assert launched.status == 202, launched.body
        assert launched.body["target"] == "platform"
        runs.append(launched.body["runId"])
    refused = local_mode.request(
        "POST", f"/agents/{agent_id}/tests", token=token, body={"input": "one too many"}
    )
    assert refused.status == 429
    assert refused.body["error"]["code"] == "QUOTA_EXCEEDED"
    assert "retry-after" in refused.headers

    run = wait_for_run(local_mode, token, runs[0], "STOPPED")
    assert run["exitCode"] == 0
    assert run["startedAt"] and run["stoppedAt"]

    lines: list[str] = []
    next_token: str | None = None
    pages = 0
    while True:
        query = f"?limit=2&nextToken={next_token}" if next_token else "?limit=2"
        page = local_mode.request("GET", f"/runs/{runs[0]}/logs{query}", token=token)
        assert page.status == 200, page.body
        lines += [line["message"] for line in page.body["lines"]]
        pages += 1
        next_token = page.body["nextToken"]
        if not next_token or not page.body["lines"]:
            break
    assert pages >= 3  # read page by page, not in one go
    assert any("local Bedrock emulator" in line for line in lines)
    assert any("You said: hello 0" in line for line in lines)
    finished = [json.loads(line) for line in lines if line.startswith('{"event":"run.finished"')]
    assert finished and finished[0]["status"] == "SUCCEEDED"

    me = local_mode.request("GET", "/me", token=token).body
    assert me["usage"]["testsUsed"] == TESTS_PER_MONTH


def test_another_users_run_is_not_found(local_mode: LocalMode) -> None:
    owner = local_mode.sign_in("owner@example.com")
    agent = local_mode.request("POST", "/agents", token=owner, body=AGENT).body
    run = local_mode.request(
        "POST", f"/agents/{agent['agentId']}/tests", token=owner, body={"input": "mine"}
    ).body
    stranger = local_mode.sign_in("stranger@example.com")
    assert local_mode.request("GET", f"/runs/{run['runId']}", token=stranger).status == 404
    assert local_mode.request("GET", f"/agents/{agent['agentId']}", token=stranger).status == 404


CUSTOMER_ACCOUNT = "111111111111"
# agent_runner/runner.py reads its request from AGENT_REQUEST when there is no platform
# bucket (a customer account); before that change, a customer run exits 1 saying so.
RUNNER_HAS_CUSTOMER_MODE = "AGENT_REQUEST" in (ROOT / "agent_runner" / "runner.py").read_text()


def read_all_logs(local: LocalMode, token: str, run_id: str) -> Answer:
    lines: list[dict[str, Any]] = []
    query = "?limit=50"
    while True:
        page = local.request("GET", f"/runs/{run_id}/logs{query}", token=token)
        if page.status != 200:
            return page
        lines += page.body["lines"]
        if not page.body["nextToken"] or not page.body["lines"]:
            return Answer(200, page.headers, {"lines": lines})
        query = f"?limit=50&nextToken={page.body['nextToken']}"


def tasks_started_by(session: Any, endpoint: str, run_id: str) -> list[dict[str, Any]]:
    """Every task in the session's account, on any cluster, that `run_id` started."""
    ecs = session.client("ecs", endpoint_url=endpoint)
    found: list[dict[str, Any]] = []
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_tasks(cluster=cluster, startedBy=run_id)["taskArns"]
        if arns:
            found += ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"]
    return found


def test_tier2_onboard_launch_connect_deploy_disconnect(local_mode: LocalMode) -> None:
    """Issue 6's journey: the exported template launched into a second emulated account,
    registered over SNS, a deployment run there, followed through the role, then
    disconnected and reconnected by pasting the role."""
    import boto3

    from local_mode.customer import customer_session, launch_customer_stack

    token = local_mode.sign_in("customer@example.com")
    onboarding = local_mode.request("POST", "/aws-account/onboarding", token=token)
    assert onboarding.status == 200, onboarding.body
    assert onboarding.body["registration"] == "automatic"
    external_id = onboarding.body["externalId"]

    # Through the Launch Stack link (External ID and single-use registration token), as
    # the console fills in the parameters; it returns once registration answered SUCCESS.
    outputs = launch_customer_stack(
        api_url=local_mode.url,
        account_id=CUSTOMER_ACCOUNT,
        launch_stack_url=onboarding.body["launchStackUrl"],
    )
    account = local_mode.request("GET", "/aws-account", token=token)
    assert account.status == 200, account.body
    assert account.body["status"] == "connected"
    assert account.body["accountId"] == CUSTOMER_ACCOUNT
    assert account.body["roleArn"] == outputs["RoleArn"]
    assert account.body["connectedVia"] == "registration"
    assert account.body["clusterArn"] == outputs["ClusterArn"]
    assert account.body["templateOutdated"] is False
    assert "externalId" not in account.body
    assert local_mode.request("GET", "/me", token=token).body["tier"] == "personal"

    agent = local_mode.request("POST", "/agents", token=token, body=AGENT).body
    deployed = local_mode.request(
        "POST", f"/agents/{agent['agentId']}/deployments", token=token, body={"input": "hi"}
    )
    assert deployed.status == 202, deployed.body
    assert deployed.body["target"] == "customer"
    assert deployed.body["accountId"] == CUSTOMER_ACCOUNT
    run_id = deployed.body["runId"]

    # Tier 2 state comes from DescribeTasks through the role on GET (no events).
    run = wait_for_run(local_mode, token, run_id, "STOPPED")
    assert run["startedAt"] and run["stoppedAt"]
    assert run["stopReason"] == "Essential container in task exited"

    # The task and its task definition are in the customer's account, not the platform's.
    info = local_mode.info
    customer = customer_session(info, CUSTOMER_ACCOUNT)
    platform = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # the emulator's fake credentials
        region_name=info["region"],
    )
    [task] = tasks_started_by(customer, info["aws"], run_id)
    assert task["clusterArn"] == outputs["ClusterArn"]
    assert {t["key"]: t["value"] for t in task["tags"]}["runId"] == run_id
    assert not tasks_started_by(platform, info["aws"], run_id)
    ecs = customer.client("ecs", endpoint_url=info["aws"])
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    assert (
        f":{CUSTOMER_ACCOUNT}:task-definition/agent-builder-agent-runner:"
        in (definition["taskDefinition"]["taskDefinitionArn"])
    )
    # Deregistered and deleted after RunTask: ECS keeps it only while its task needs it.
    assert definition["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    for status in ("ACTIVE", "INACTIVE"):
        assert not ecs.list_task_definitions(
            familyPrefix="agent-builder-agent-runner", status=status
        )["taskDefinitionArns"]
    environment = {
        e["name"]: e["value"]
        for e in definition["taskDefinition"]["containerDefinitions"][0]["environment"]
    }
    assert json.loads(environment["AGENT_REQUEST"])["input"] == "hi"

    # Its output is in the customer's log group, read through the role.
    logs = read_all_logs(local_mode, token, run_id)
    assert logs.status == 200, logs.body
    messages = [line["message"] for line in logs.body["lines"]]
    if RUNNER_HAS_CUSTOMER_MODE:
        assert run["exitCode"] == 0, messages
        assert any("You said: hi" in message for message in messages)
    else:
        assert run["exitCode"] == 1
        assert any("missing required environment variable" in m for m in messages), messages
    # Customer runs are not on the free quota.
    me = local_mode.request("GET", "/me", token=token).body
    assert me["usage"]["testsUsed"] == 0

    # Disconnect: freemium again; the run stays readable as last seen, its logs say where.
    assert local_mode.request("DELETE", "/aws-account", token=token).status == 204
    assert local_mode.request("GET", "/aws-account", token=token).status == 404
    assert local_mode.request("GET", "/me", token=token).body["tier"] == "freemium"
    after = local_mode.request("GET", f"/runs/{run_id}", token=token)
    assert after.status == 200
    assert (after.body["status"], after.body["exitCode"]) == ("STOPPED", run["exitCode"])
    frozen = local_mode.request("GET", f"/runs/{run_id}/logs", token=token)
    assert frozen.status == 409
    assert frozen.body["error"]["code"] == "ACCOUNT_NOT_CONNECTED"
    assert CUSTOMER_ACCOUNT in frozen.body["error"]["message"]

    # The paste path: the stack's RoleArn output and the same External ID reconnect.
    pasted = local_mode.request(
        "PUT",
        "/aws-account",
        token=token,
        body={"roleArn": outputs["RoleArn"], "externalId": external_id, "region": info["region"]},
    )
    assert pasted.status == 200, pasted.body
    assert pasted.body["connectedVia"] == "api"
    assert sorted(pasted.body["subnetIds"]) == sorted(outputs["SubnetIds"].split(","))
    assert pasted.body["securityGroupId"] == outputs["SecurityGroupId"]
    assert local_mode.request("GET", "/me", token=token).body["tier"] == "personal"
    assert read_all_logs(local_mode, token, run_id).body["lines"] == logs.body["lines"]
    assert local_mode.request("DELETE", "/aws-account", token=token).status == 204
    assert local_mode.request("GET", "/me", token=token).body["tier"] == "freemium"


def test_a_registration_with_an_unknown_external_id_fails_the_stack(
    local_mode: LocalMode,
) -> None:
    from local_mode.customer import launch_customer_stack

    with pytest.raises(
        RuntimeError, match="Registration answered FAILED: the registration could not be verified"
    ):
        launch_customer_stack(
            api_url=local_mode.url,
            account_id="222222222222",
            external_id="not-an-id-the-platform-issued",
        )


# ---- forged registrations: refused through the real SNS -> SQS -> function path -------------


def publish_registration(
    local: LocalMode, account_id: str, properties: dict[str, Any], *, response_url: str
) -> None:
    """What an attacker can do with no platform login: publish a Create to the topic."""
    import uuid

    from local_mode.customer import customer_session

    info = local.info
    session = customer_session(info, account_id)
    message = {
        "RequestType": "Create",
        "ServiceToken": info["registrationTopicArn"],
        "ResponseURL": response_url,
        "StackId": f"arn:aws:cloudformation:{info['region']}:{account_id}:stack/x/{uuid.uuid4()}",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Registration",
        "ResourceType": "Custom::AgentBuilderRegistration",
        "ResourceProperties": properties,
    }
    session.client("sns", endpoint_url=info["aws"]).publish(
        TopicArn=info["registrationTopicArn"], Message=json.dumps(message)
    )


def forged_properties(info: dict[str, Any], account_id: str, external_id: str) -> dict[str, Any]:
    return {
        "RoleArn": f"arn:aws:iam::{account_id}:role/agent-builder-deployer",
        "ExternalId": external_id,
        "AccountId": account_id,
        "Region": info["region"],
        "ResourcePrefix": "agent-builder",
        "ClusterArn": f"arn:aws:ecs:{info['region']}:{account_id}:cluster/agent-builder-cluster",
        "SubnetIds": ["subnet-0123456789abcdef0"],
        "SecurityGroupId": "sg-0123456789abcdef0",
        "TemplateVersion": "1.2.0",
    }


def test_a_forged_registration_without_the_token_connects_nothing_and_contacts_nothing(
    local_mode: LocalMode,
) -> None:
    """The victim's External ID leaked (it is not a secret); the attacker publishes a
    Create with it from their own account, once answering to their own server and once to
    CloudFormation's bucket: the first is never contacted, the second reads FAILED, and the
    victim stays unconnected."""
    import http.server
    import threading
    from urllib.parse import quote

    from local_mode.customer import response_url, wait_for_response

    victim = local_mode.sign_in("victim@example.com")
    external_id = local_mode.request("POST", "/aws-account/onboarding", token=victim).body[
        "externalId"
    ]
    info = local_mode.info
    attacker = "444444444444"
    contacted: list[str] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            contacted.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        properties = forged_properties(info, attacker, external_id)
        publish_registration(
            local_mode,
            attacker,
            properties,
            response_url=f"http://127.0.0.1:{server.server_port}/collect",
        )
        url = response_url(info["region"], "forged", "Registration", quote(attacker))
        publish_registration(
            local_mode,
            attacker,
            {**properties, "RegistrationToken": "A" * 43},
            response_url=url,
        )
        # The queue feeds the function one message at a time, in order: once the second
        # is answered, the first was handled too.
        answer = wait_for_response(info, url)
    finally:
        server.shutdown()
        server.server_close()
    assert answer["Status"] == "FAILED"
    assert "could not be verified" in answer["Reason"]
    assert attacker not in answer["Reason"]
    assert contacted == []
    assert local_mode.request("GET", "/aws-account", token=victim).status == 404
    assert local_mode.request("GET", "/me", token=victim).body["tier"] == "freemium"


def test_a_launch_stack_link_registers_once(local_mode: LocalMode) -> None:
    from local_mode.customer import launch_customer_stack

    token = local_mode.sign_in("once@example.com")
    link = local_mode.request("POST", "/aws-account/onboarding", token=token).body["launchStackUrl"]
    launch_customer_stack(api_url=local_mode.url, account_id="555555555555", launch_stack_url=link)
    assert local_mode.request("DELETE", "/aws-account", token=token).status == 204

    with pytest.raises(RuntimeError, match="answered FAILED: the registration could not be"):
        launch_customer_stack(
            api_url=local_mode.url, account_id="666666666666", launch_stack_url=link
        )
    assert local_mode.request("GET", "/aws-account", token=token).status == 404


def test_make_smoke_walks_the_readme_journey(
    local_mode: LocalMode, capsys: pytest.CaptureFixture[str]
) -> None:
    """scripts/smoke.py, the owner's check after a deploy, against local mode."""
    token = local_mode.sign_in("smoke@example.com")
    assert smoke.main(["--api", local_mode.url, "--token", token, "--wait", "60"]) == 0
    out = capsys.readouterr().out
    for step in ("signed in as", "created agent", "launched run", ": STOPPED", "deleted agent"):
        assert step in out
    assert smoke.main(["--api", local_mode.url, "--token", "not-a-token"]) == 1
    assert "GET /me: expected 200, got 401" in capsys.readouterr().err


def test_github_sign_in_without_a_claims_provider_says_it_is_not_configured(
    local_mode: LocalMode,
) -> None:
    answer = local_mode.request(
        "POST", "/_local/sign-in", body={"email": "gh@example.com", "provider": "github"}
    )
    assert answer.status == 400
    assert answer.body["error"]["code"] == "PROVIDER_NOT_CONFIGURED"
    assert "GitHub sign-in is not configured" in answer.body["error"]["message"]


def test_zz_sigterm_stops_local_mode_and_frees_its_ports(local_mode: LocalMode) -> None:
    assert stop_local_mode(local_mode) == 0
    assert nothing_listens_on(local_mode.api_port)
    assert nothing_listens_on(local_mode.aws_port)
    assert "local mode: stopped" in local_mode.log_tail()
