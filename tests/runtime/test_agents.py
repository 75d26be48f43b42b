"""Agents: create, list (paginated), get, delete, and every refusal writing nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.runtime.support import AGENT, MODELS, OTHER_USER, USER, ApiCall, Platform


def test_create_agent_answers_201_with_the_stored_agent(api: ApiCall, platform: Platform) -> None:
    answer = api("POST", "/agents", body=AGENT)

    assert answer.status == 201
    assert answer.body["agentId"]
    assert {k: answer.body[k] for k in ("name", "model", "instructions", "parameters")} == AGENT
    [item] = platform.table_items("AGENTS_TABLE")
    assert item["userId"] == USER and item["agentId"] == answer.body["agentId"]


def test_create_agent_also_creates_the_profile(api: ApiCall, platform: Platform) -> None:
    api("POST", "/agents", body=AGENT)

    assert [p["tier"] for p in platform.table_items("PROFILES_TABLE")] == ["freemium"]


def test_get_agent_returns_it(api: ApiCall, agent_id: str) -> None:
    answer = api("GET", f"/agents/{agent_id}")

    assert answer.status == 200
    assert answer.body["agentId"] == agent_id
    assert answer.body["parameters"] == {"temperature": 0.2, "maxTokens": 256}


def test_another_users_agent_answers_404(api: ApiCall, agent_id: str) -> None:
    assert api("GET", f"/agents/{agent_id}", user=OTHER_USER).status == 404
    answer = api("DELETE", f"/agents/{agent_id}", user=OTHER_USER)
    assert answer.status == 404
    assert answer.error_code == "AGENT_NOT_FOUND"
    assert api("GET", f"/agents/{agent_id}").status == 200


@pytest.mark.parametrize("agent_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
def test_missing_agent_answers_404(api: ApiCall, agent_id: str) -> None:
    answer = api("GET", f"/agents/{agent_id}")

    assert answer.status == 404
    assert answer.error_code == "AGENT_NOT_FOUND"


def test_delete_agent_answers_204_and_removes_it(
    api: ApiCall, agent_id: str, platform: Platform
) -> None:
    answer = api("DELETE", f"/agents/{agent_id}")

    assert answer.status == 204
    assert answer.body is None
    assert platform.table_items("AGENTS_TABLE") == []
    assert api("DELETE", f"/agents/{agent_id}").status == 404


def test_list_agents_pages_through_all_of_them_with_next_token(
    api: ApiCall, platform: Platform
) -> None:
    created = {
        api("POST", "/agents", body={**AGENT, "name": f"bot {i}"}).body["agentId"] for i in range(5)
    }
    api("POST", "/agents", body=AGENT, user=OTHER_USER)

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"nextToken": token} if token else {})}
        answer = api("GET", "/agents", query=query)
        assert answer.status == 200
        seen += [agent["agentId"] for agent in answer.body["agents"]]
        token = answer.body["nextToken"]
        pages += 1
        if token is None:
            break

    assert set(seen) == created and len(seen) == 5
    assert pages >= 3


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"agentId": 3}').decode(),
        base64.urlsafe_b64encode(b'{"userId": "x", "agentId": "y"}').decode(),
        "x" * 3000,
    ],
)
def test_list_agents_refuses_a_token_it_did_not_issue(api: ApiCall, token: str) -> None:
    answer = api("GET", "/agents", query={"nextToken": token})

    assert answer.status == 400
    assert answer.error_code in {"INVALID_NEXT_TOKEN", "VALIDATION_ERROR"}


def test_list_agents_refuses_an_out_of_range_limit(api: ApiCall) -> None:
    answer = api("GET", "/agents", query={"limit": "0"})

    assert answer.status == 400
    assert answer.error_code == "VALIDATION_ERROR"


def test_freemium_user_cannot_give_an_agent_a_custom_image(
    api: ApiCall, platform: Platform
) -> None:
    answer = api("POST", "/agents", body={**AGENT, "image": "public.ecr.aws/me/agent:1"})

    assert answer.status == 403
    assert answer.error_code == "IMAGE_NOT_ALLOWED"
    assert "Tier 2" in answer.body["error"]["message"]
    assert platform.table_items("AGENTS_TABLE") == []


def test_connected_user_may_give_an_agent_a_custom_image(api: ApiCall, platform: Platform) -> None:
    platform.client("dynamodb").put_item(
        TableName=platform.env["PROFILES_TABLE"],
        Item={
            "userId": {"S": USER},
            "tier": {"S": "personal"},
            "createdAt": {"S": "2025-01-01T00:00:00.000Z"},
        },
    )

    answer = api(
        "POST",
        "/agents",
        body={**AGENT, "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1"},
    )

    assert answer.status == 201
    assert answer.body["image"].endswith("/a:1")


BAD_AGENTS: list[tuple[str, dict[str, Any]]] = [
    ("empty name", {**AGENT, "name": ""}),
    ("name too long", {**AGENT, "name": "a" * 65}),
    ("name with a slash", {**AGENT, "name": "a/b"}),
    ("name with an emoji", {**AGENT, "name": "bot 🤖"}),
    ("name padded with spaces", {**AGENT, "name": " bot "}),
    ("model not allowed", {**AGENT, "model": "openai.gpt-9"}),
    ("instructions over 16 KiB in UTF-8", {**AGENT, "instructions": "é" * 8193}),
    ("instructions over 16 KiB in characters", {**AGENT, "instructions": "a" * 16385}),
    ("blank instructions", {**AGENT, "instructions": "   "}),
    ("temperature above 1", {**AGENT, "parameters": {"temperature": 1.5}}),
    ("temperature below 0", {**AGENT, "parameters": {"temperature": -0.1}}),
    ("temperature as a string", {**AGENT, "parameters": {"temperature": "0.5"}}),
    ("maxTokens above the cap", {**AGENT, "parameters": {"maxTokens": 1025}}),
    ("maxTokens zero", {**AGENT, "parameters": {"maxTokens": 0}}),
    ("maxTokens as a float", {**AGENT, "parameters": {"maxTokens": 1.5}}),
    ("unknown parameter", {**AGENT, "parameters": {"topK": 3}}),
    ("unknown field", {**AGENT, "owner": "someone-else"}),
    ("name as a number", {**AGENT, "name": 42}),
    ("missing model", {k: v for k, v in AGENT.items() if k != "model"}),
    ("body is a list", [AGENT]),  # type: ignore[list-item]
    ("body is a string", "agent"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("why", "body"), BAD_AGENTS, ids=[why for why, _ in BAD_AGENTS])
def test_invalid_agent_is_refused_with_400_and_nothing_is_written(
    api: ApiCall, platform: Platform, why: str, body: Any
) -> None:
    before = platform.snapshot()

    answer = api("POST", "/agents", body=body)

    assert answer.status == 400, (why, answer.body)
    assert answer.error_code == "VALIDATION_ERROR"
    assert answer.body["error"]["message"]
    assert platform.snapshot() == before


def test_malformed_json_is_refused_with_400_and_nothing_is_written(
    api: ApiCall, platform: Platform
) -> None:
    answer = api("POST", "/agents", raw_body='{"name": "x",')

    assert answer.status == 400
    assert answer.body["error"] == {
        "code": "VALIDATION_ERROR",
        "message": "the request body is not valid JSON",
    }
    assert platform.snapshot() == {key: [] for key in platform.snapshot()}


def test_error_message_names_the_field_but_does_not_echo_the_input(api: ApiCall) -> None:
    answer = api("POST", "/agents", body={**AGENT, "name": "secret-token/xyz"})

    assert "name" in answer.body["error"]["message"]
    assert "secret-token" not in answer.body["error"]["message"]


def test_every_allowed_model_is_accepted(api: ApiCall) -> None:
    for model in MODELS:
        assert api("POST", "/agents", body={**AGENT, "model": model}).status == 201
