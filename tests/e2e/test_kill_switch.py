"""The owner's bill in local mode, end to end: a finished test carries its receipt, and
the budget's kill switch walks its whole path (AWS Budgets' alert published to the
emulated budget topic, SNS to the function, the pause in the charge transaction), a
connected customer's deployments go on, and `make resume-free-tier` lifts the pause.

Its own local mode (module fixture): pausing the free tier is platform-wide, and the
other journeys' tests must not see it. The tests run in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from local_mode.assembly import ROOT
from local_mode.harness import LocalMode
from tests.e2e.test_journeys import wait_for_run

pytestmark = pytest.mark.e2e

AGENT = {
    "name": "greeter",
    "model": "amazon.nova-micro-v1:0",
    "instructions": "Answer in one short paragraph.",
}
CUSTOMER_ACCOUNT = "222222222222"


def new_agent(local: LocalMode, token: str) -> str:
    created = local.request("POST", "/agents", token=token, body=AGENT)
    assert created.status == 201, created.body
    return str(created.body["agentId"])


def launch(local: LocalMode, token: str, agent_id: str, text: str = "hello") -> Any:
    return local.request("POST", f"/agents/{agent_id}/tests", token=token, body={"input": text})


def resume_free_tier(local: LocalMode, *args: str) -> dict[str, Any]:
    """`make resume-free-tier`, pointed at local mode's emulated AWS."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": local.info["aws"],
        "AWS_REGION": local.info["region"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [sys.executable, "scripts/resume_free_tier.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_finished_test_shows_its_receipt_and_me_adds_it_up(local_mode: LocalMode) -> None:
    token = local_mode.sign_in("early@example.com")
    agent_id = new_agent(local_mode, token)
    launched = launch(local_mode, token, agent_id, "count these words please")
    assert launched.status == 202, launched.body

    run = wait_for_run(local_mode, token, launched.body["runId"], "STOPPED")

    receipt = run["receipt"]
    # The local Bedrock counts words as tokens (local_mode/README.md).
    assert receipt["inputTokens"] > 0 and receipt["outputTokens"] > 0
    assert receipt["durationSeconds"] >= 0
    cost = receipt["estimatedCostUsd"]
    assert cost["compute"] > 0 and cost["model"] > 0
    assert cost["total"] == pytest.approx(cost["compute"] + cost["model"], abs=1e-6)
    assert receipt["pricedAt"]
    usage = local_mode.request("GET", "/me", token=token).body["usage"]
    assert usage["inputTokens"] == receipt["inputTokens"]
    assert usage["estimatedCostUsd"] == pytest.approx(cost["total"], abs=1e-6)


def test_a_budget_alert_below_100_percent_pauses_nothing(local_mode: LocalMode) -> None:
    token = local_mode.sign_in("early@example.com")
    agent_id = new_agent(local_mode, token)

    sent = local_mode.request("POST", "/_local/budget-notification", body={"percent": 80})

    assert sent.status == 202, sent.body
    assert launch(local_mode, token, agent_id).status == 202
    assert resume_free_tier(local_mode, "--status")["paused"] is False


def test_the_budget_alert_pauses_tests_but_not_personal_deployments(local_mode: LocalMode) -> None:
    from local_mode.customer import launch_customer_stack

    tester = local_mode.sign_in("tester@example.com")
    agent_id = new_agent(local_mode, tester)
    customer = local_mode.sign_in("customer@example.com")
    onboarding = local_mode.request("POST", "/aws-account/onboarding", token=customer)
    assert onboarding.status == 200, onboarding.body
    launch_customer_stack(
        api_url=local_mode.url,
        account_id=CUSTOMER_ACCOUNT,
        launch_stack_url=onboarding.body["launchStackUrl"],
    )
    assert local_mode.request("GET", "/me", token=customer).body["tier"] == "personal"
    their_agent = new_agent(local_mode, customer)

    sent = local_mode.request("POST", "/_local/budget-notification", body={})
    assert sent.status == 202, sent.body

    refused = launch(local_mode, tester, agent_id)
    assert refused.status == 503, refused.body
    assert refused.body["error"]["code"] == "FREE_TIER_PAUSED"
    assert int(refused.headers["retry-after"]) > 0
    assert local_mode.request("GET", "/me", token=tester).body["usage"]["testsUsed"] == 0
    # Tests are the free tier whoever asks; a personal deployment bills the customer.
    assert launch(local_mode, customer, their_agent).body["error"]["code"] == "FREE_TIER_PAUSED"
    deployed = local_mode.request(
        "POST", f"/agents/{their_agent}/deployments", token=customer, body={"input": "hi"}
    )
    assert deployed.status == 202, deployed.body
    assert deployed.body["target"] == "customer"
    assert deployed.body["accountId"] == CUSTOMER_ACCOUNT
    assert wait_for_run(local_mode, customer, deployed.body["runId"], "STOPPED")["exitCode"] == 0
    status = resume_free_tier(local_mode, "--status")
    assert status["paused"] is True and status["pausedBy"] == "budgets.amazonaws.com"


def test_resuming_lets_tests_run_again(local_mode: LocalMode) -> None:
    token = local_mode.sign_in("tester@example.com")
    agent_id = local_mode.request("GET", "/agents", token=token).body["agents"][0]["agentId"]

    outcome = resume_free_tier(local_mode)

    assert outcome["result"] == "resumed" and outcome["paused"] is False
    assert outcome["by"].startswith("arn:aws:")
    launched = launch(local_mode, token, agent_id)
    assert launched.status == 202, launched.body
    assert wait_for_run(local_mode, token, launched.body["runId"], "STOPPED")["exitCode"] == 0
