"""The policy table (agent_builder/access.py) and the route table agree, both ways."""

from __future__ import annotations

from agent_builder.access import POLICY, VIEWER, WRITERS
from constructs.control_plane_api import ROUTES


def _served(module_name: str) -> set[str]:
    import importlib

    return set(importlib.import_module(module_name).api.route_keys())


def _app_routes() -> set[str]:
    return _served("handlers.api") | _served("handlers.org_api")


def test_every_route_of_the_api_has_a_rule() -> None:
    assert _app_routes() <= set(POLICY), sorted(_app_routes() - set(POLICY))


def test_every_rule_is_a_route() -> None:
    assert set(POLICY) == _app_routes(), sorted(set(POLICY) ^ _app_routes())


def test_the_control_plane_serves_exactly_the_handlers_routes() -> None:
    assert {route.key for route in ROUTES} == _app_routes()


def test_each_route_goes_to_the_function_that_serves_it() -> None:
    from constructs.control_plane_api import CORE, ORGANIZATIONS

    by_function = {CORE: _served("handlers.api"), ORGANIZATIONS: _served("handlers.org_api")}
    for route in ROUTES:
        assert route.key in by_function[route.function], route.key
    assert not by_function[CORE] & by_function[ORGANIZATIONS]


def test_viewers_start_nothing_and_change_nothing() -> None:
    for key in (
        "POST /agents",
        "POST /agents/{agentId}/tests",
        "POST /agents/{agentId}/deployments",
        "DELETE /agents/{agentId}",
        "PATCH /org",
        "POST /org/invitations",
        "POST /org/sso/device-authorization",
        "PUT /aws-account",
    ):
        assert VIEWER not in POLICY[key].roles, key
        assert POLICY[key].roles <= WRITERS, key
