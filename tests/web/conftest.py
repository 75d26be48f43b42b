"""The console in a real browser: Debian's Chromium driven by Playwright, against local mode.

One local mode and one browser per module; each test gets a fresh browser context (its
own session storage), records every request the console sends to the API (checked
against dist/openapi.json at the end of the test) and every console error or CSP
violation (a test fails on any), and leaves a screenshot of where it ended in
build/screenshots/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local_mode.assembly import ROOT
from local_mode.browser import MISSING, chromium_executable, launch_chromium
from local_mode.harness import LocalMode

# One local mode per module, as the e2e journeys start it (a small quota to spend).
from tests.e2e.conftest import TESTS_PER_MONTH, local_mode

__all__ = ["TESTS_PER_MONTH", "local_mode"]

SCREENSHOTS = ROOT / "build" / "screenshots"
OPENAPI = json.loads((ROOT / "dist" / "openapi.json").read_text())
# Local mode's own routes the console uses (not in the API's document).
LOCAL_ROUTES = {("POST", "/_local/sign-in")}
CONSOLE_FILES = re.compile(
    r"^/($|index\.html$|config\.json$|styles\.css$|favicon\.svg$|js/[a-z_]+\.js$)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if chromium_executable() is None:
        pytest.fail(MISSING)  # fail, not skip: `make test` must run the browser journeys
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Traffic:
    """What the console asked of the server, and what went wrong in the page."""

    api_calls: list[tuple[str, str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def page(
    browser: Any, local_mode: LocalMode, traffic: Traffic, request: pytest.FixtureRequest
) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)

    def on_request(sent: Any) -> None:
        url = sent.url
        if not url.startswith(local_mode.url):
            traffic.problems.append(f"a request left the origin: {url}")
            return
        path = url[len(local_mode.url) :].split("?", 1)[0]
        if CONSOLE_FILES.match(path) and sent.method == "GET":
            traffic.files.append(path)
            return
        body = sent.post_data
        traffic.api_calls.append((sent.method, path, json.loads(body) if body else None))

    tab.on("request", on_request)
    tab.on(
        "console",
        lambda message: (
            traffic.problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            and "the server responded with a status of" not in message.text
            else None
        ),
    )
    tab.on("pageerror", lambda error: traffic.problems.append(f"page error: {error}"))
    tab.goto(local_mode.url + "/")
    yield tab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not traffic.problems, traffic.problems
    undocumented = [call for call in traffic.api_calls if not documented(*call)]
    assert not undocumented, f"calls not in dist/openapi.json: {undocumented}"


def documented(method: str, path: str, body: Any) -> bool:
    """The call is an operation of the API's document, with a body its schema allows."""
    if (method, path) in LOCAL_ROUTES:
        return True
    for template, operations in OPENAPI["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return body_fits(operations[method.lower()], body)
    return False


def body_fits(operation: dict[str, Any], body: Any) -> bool:
    content = (operation.get("requestBody") or {}).get("content", {})
    if body is None:
        return not (operation.get("requestBody") or {}).get("required")
    schema = resolve(content.get("application/json", {}).get("schema", {}))
    if not isinstance(body, dict):
        return False
    properties = schema.get("properties", {})
    return set(body) <= set(properties) and set(schema.get("required", [])) <= set(body)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return dict(OPENAPI["components"]["schemas"][name])
    return schema


def sign_in(page: Any, email: str, provider: str = "E-mail") -> None:
    page.get_by_label("E-mail address").fill(email)
    page.get_by_role("radio", name=provider).check()
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Agents").wait_for()
