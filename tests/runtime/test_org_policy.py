"""The policy table (agent_builder/access.py) and the route table agree, both ways."""

from __future__ import annotations

from agent_builder.access import POLICY, VIEWER, WRITERS
from constructs.control_plane_api import ROUTES

# Rules written ahead of their routes: SSO sign-in and deploys, organisation accounts.
SEAMS = {
    "PUT /org/sso",
    "DELETE /org/sso",
    "POST /org/sso/device-authorization",
    "GET /org/sso/session",
    "DELETE /org/sso/session",
    "POST /org/accounts/onboarding",
    "GET /org/accounts",
    "DELETE /org/accounts/{accountId}",
}


def _app_routes() -> set[str]:
    from handlers.api import app

    return {
        f"{route.method} {route.openapi_path}"
        for route in (*app._static_routes, *app._dynamic_routes)
    }


def test_every_route_of_the_api_has_a_rule() -> None:
    assert _app_routes() <= set(POLICY), sorted(_app_routes() - set(POLICY))


def test_every_rule_is_a_route_or_a_named_seam() -> None:
    assert set(POLICY) - _app_routes() == SEAMS


def test_the_control_plane_serves_exactly_the_handlers_routes() -> None:
    assert {route.key for route in ROUTES} == _app_routes()


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
