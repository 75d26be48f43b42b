"""The console's journeys, as a person clicks them, in Chromium against local mode.

The tests share one local mode and run in order: the quota journey spends the month's
tests of the user the first journeys made. Elements are found by role and label.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from local_mode.harness import LocalMode
from tests.web.conftest import SCREENSHOTS, TESTS_PER_MONTH, Traffic, sign_in

pytestmark = pytest.mark.web

USER = "builder@example.com"
QUESTION = "Say hello in one sentence."


def create_agent(page: Any, name: str) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Model", exact=True).select_option("amazon.nova-micro-v1:0")
    page.get_by_label("Instructions", exact=True).fill("You are a friendly greeter.")
    page.get_by_label("Temperature (optional)").fill("0.5")
    page.get_by_role("button", name="Create agent").click()
    page.get_by_role("heading", name=name).wait_for()


def run_status(page: Any) -> Any:
    return page.get_by_role("region", name="Run").locator(".status")


def wait_until_stopped(page: Any) -> None:
    """STOPPED, and its outcome shown (exit code, stop reason)."""
    page.locator(".status[data-status=STOPPED]").wait_for(timeout=60_000)
    page.get_by_role("heading", name="Result").wait_for()


def test_sign_in_create_an_agent_test_it_and_watch_it_answer(
    page: Any, local_mode: LocalMode, traffic: Traffic
) -> None:
    sign_in(page, USER)
    usage = page.get_by_role("region", name="This month's usage")
    assert f"0 of {TESTS_PER_MONTH}" in usage.inner_text()
    create_agent(page, "greeter")

    page.get_by_label("Input", exact=True).fill(QUESTION)
    # Every status the run panel shows, in order, as a person watching would see them.
    page.evaluate(
        """() => {
          window.seenStatuses = [];
          new MutationObserver(() => {
            const shown = document.querySelector('.status')?.dataset.status;
            if (shown && window.seenStatuses.at(-1) !== shown) window.seenStatuses.push(shown);
          }).observe(document.body, {subtree: true, childList: true, attributes: true,
                                     characterData: true});
        }"""
    )
    clicked = time.monotonic()
    page.get_by_role("button", name="Test", exact=True).click()
    # The run appears at once, before it has started.
    run = page.get_by_role("region", name="Run")
    run.wait_for()
    first_status = run_status(page).inner_text()
    assert first_status in ("PENDING", "RUNNING", "STOPPED")
    answer = page.get_by_label("Answer")
    page.wait_for_function(
        "() => document.querySelector('pre.answer').textContent.length > 0", timeout=30_000
    )
    first_text = time.monotonic() - clicked
    wait_until_stopped(page)
    result = page.get_by_role("region", name="Run").inner_text()
    assert "Exit code" in result and re.search(r"Exit code\s+0", result), result
    assert "Stop reason" in result and "null" not in result
    seen = page.evaluate("() => window.seenStatuses")
    order = ["PENDING", "RUNNING", "STOPPED"]
    assert seen[-1] == "STOPPED" and seen == sorted(seen, key=order.index), seen
    text = answer.inner_text()
    assert "local" in text.lower(), text  # the stand-in says it is the local emulator
    # The statuses it went through were shown as they came (PENDING/RUNNING, then STOPPED).
    run_id = run.locator("code").inner_text()
    token = local_mode.request("POST", "/_local/sign-in", body={"email": USER}).body["accessToken"]
    record = local_mode.request("GET", f"/runs/{run_id}", token=token).body
    assert record["status"] == "STOPPED" and record["exitCode"] == 0
    # The run's receipt, as the API has it, is what the console shows.
    receipt = page.get_by_role("region", name="Receipt").inner_text()
    assert record["receipt"]["outputTokens"] > 0
    assert str(record["receipt"]["outputTokens"]) in receipt
    assert "Estimated total" in receipt
    # One test was started by the one click, with an Idempotency-Key.
    starts = [c for c in traffic.api_calls if c[0] == "POST" and c[1].endswith("/tests")]
    assert len(starts) == 1 and starts[0][2] == {"input": QUESTION}
    print(f"first answer line {first_text:.2f} s after the click")


def test_receipt_and_month_totals_render_when_the_api_has_them(page: Any) -> None:
    """Issue 13's fields, from a response that has them (the page's own modules)."""
    rendered = page.evaluate(
        """async () => {
          const { receipt } = await import('/js/runs.js');
          const { usageSummary } = await import('/js/usage.js');
          const r = receipt({inputTokens: 12, outputTokens: 34, durationSeconds: 5.2,
            estimatedCostUsd: {compute: 0.0001, model: 0.00002, total: 0.00012},
            pricedAt: '2026-12-01T00:00:00Z'});
          const u = usageSummary({usage: {month: '2026-12', testsUsed: 1, testsLimit: 10,
            resetsAt: '2027-01-01T00:00:00Z', inputTokens: 100, outputTokens: 200,
            estimatedCostUsd: 0.0123}});
          return [r.innerText || r.textContent, u.textContent];
        }"""
    )
    receipt, usage = rendered
    assert "34" in receipt and "5.2 s" in receipt and "$0.00012" in receipt
    assert "100 in, 200 out" in usage and "$0.0123" in usage and "1 of 10" in usage


def test_spending_the_quota_shows_what_it_means_and_when_to_retry(
    page: Any, local_mode: LocalMode
) -> None:
    sign_in(page, USER)
    page.get_by_role("link", name="greeter").first.click()
    page.get_by_role("heading", name="greeter").wait_for()
    for _ in range(TESTS_PER_MONTH):  # the first journey used one; spend the rest, then one more
        before = page.evaluate(
            "() => document.querySelector('section[aria-label=Run] code')?.textContent ?? ''"
        )
        page.get_by_role("button", name="Test", exact=True).click()
        # A new run's panel, or the refusal in its place.
        page.wait_for_function(
            """(before) => {
              const run = document.querySelector('section[aria-label=Run] code');
              return document.querySelector('p.error[role=alert]')
                || (run && run.textContent !== before);
            }""",
            arg=before,
        )
        if page.locator("p.error[role=alert]").count():
            break
        wait_until_stopped(page)
    alert = page.get_by_role("alert").filter(has_text="this month's free tests")
    alert.wait_for()
    message = alert.inner_text()
    assert "Try again" in message, message
    page.get_by_role("link", name="Usage").click()
    usage = page.get_by_role("region", name="This month's usage").inner_text()
    assert f"{TESTS_PER_MONTH} of {TESTS_PER_MONTH}" in usage and "none left" in usage


def test_connect_a_second_account_through_launch_stack_and_deploy(
    page: Any, local_mode: LocalMode
) -> None:
    from local_mode.customer import launch_customer_stack

    sign_in(page, "customer@example.com")
    page.get_by_role("link", name="AWS account").click()
    page.get_by_role("button", name="Connect my AWS account").click()
    link = page.get_by_role("link", name="Launch Stack")
    href = link.get_attribute("href")
    assert href is not None and "/cloudformation/" in href and "#/stacks/quickcreate?" in href
    # The customer, in their own (second, emulated) account, launches the linked stack.
    launch_customer_stack(api_url=local_mode.url, account_id="222222222222", launch_stack_url=href)
    page.get_by_role("button", name="Check the connection").click()
    page.get_by_text("Connected: agents you deploy run in account 222222222222").wait_for()

    page.get_by_role("link", name="Agents").click()
    create_agent(page, "deployer")
    page.get_by_role("button", name="Deploy to my AWS account").click()
    run = page.get_by_role("region", name="Run")
    run.wait_for()
    assert "in account 222222222222" in run.inner_text()
    wait_until_stopped(page)
    assert "Exit code" in run.inner_text()

    page.get_by_role("link", name="AWS account").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_role("button", name="Connect my AWS account").wait_for()


def test_phone_sized_screen_keeps_every_action_reachable(
    browser: Any, local_mode: LocalMode
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    tab = context.new_page()
    tab.goto(local_mode.url + "/")
    sign_in(tab, USER)
    width = tab.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone: {width}px"
    tab.get_by_role("button", name="Create agent").scroll_into_view_if_needed()
    assert tab.get_by_role("button", name="Create agent").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / "phone.png"), full_page=True)
    context.close()
