"""Property-based: no request body, however odd, makes the API answer 5xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.runtime.support import AGENT, MODELS, ApiCall, Platform

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Bodies near the valid shape find more than random JSON does.
agent_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=70), json_values),
        "model": st.one_of(st.sampled_from(MODELS), st.text(max_size=30), json_values),
        "instructions": st.one_of(st.text(max_size=200), json_values),
        "parameters": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "temperature": st.one_of(st.floats(), st.integers(), json_values),
                    "maxTokens": st.one_of(st.integers(), st.floats(), json_values),
                },
            ),
            json_values,
        ),
        "image": st.one_of(st.text(max_size=30), json_values),
        "extra": json_values,
    },
)
launch_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"input": st.one_of(st.text(max_size=300), json_values), "other": json_values}
    ),
)
raw_bodies = st.one_of(st.text(max_size=100), st.builds(json.dumps, json_values))
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_handled(answer: Any) -> None:
    assert answer.status < 500, answer.body
    if answer.status >= 400:
        assert set(answer.body["error"]) == {"code", "message"}


@SETTINGS
@given(body=agent_bodies)
def test_create_agent_never_answers_5xx(
    api: ApiCall, platform: Platform, body: dict[str, Any]
) -> None:
    assert_handled(api("POST", "/agents", body=body))


@SETTINGS
@given(raw=raw_bodies)
def test_create_agent_with_any_raw_body_never_answers_5xx(
    api: ApiCall, platform: Platform, raw: str
) -> None:
    assert_handled(api("POST", "/agents", raw_body=raw))


@SETTINGS
@given(body=launch_bodies, key=st.one_of(st.none(), st.text(min_size=1, max_size=140)))
def test_launch_routes_never_answer_5xx(
    api: ApiCall, platform: Platform, agent_id: str, body: Any, key: str | None
) -> None:
    headers = {"Idempotency-Key": key} if key and key.isprintable() and "\n" not in key else {}
    for route in ("tests", "deployments"):
        assert_handled(api("POST", f"/agents/{agent_id}/{route}", body=body, headers=headers))


@SETTINGS
@given(token=st.text(max_size=60), limit=st.text(max_size=6))
def test_list_routes_never_answer_5xx(
    api: ApiCall, platform: Platform, token: str, limit: str
) -> None:
    query = {k: v for k, v in {"nextToken": token, "limit": limit}.items() if v}
    for path in ("/agents", "/runs"):
        assert_handled(api("GET", path, query=query))


@SETTINGS
@given(agent_id=st.text(max_size=80))
def test_any_agent_id_never_answers_5xx(api: ApiCall, platform: Platform, agent_id: str) -> None:
    if "/" in agent_id or not agent_id:
        return
    assert_handled(api("GET", f"/agents/{agent_id}"))
    assert_handled(api("DELETE", f"/agents/{agent_id}"))
    assert_handled(api("POST", f"/agents/{agent_id}/tests", body={"input": "x"}))


def test_a_valid_body_is_still_accepted_after_all_that(api: ApiCall) -> None:
    assert api("POST", "/agents", body=AGENT).status == 201
