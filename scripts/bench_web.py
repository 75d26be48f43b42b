"""Web console benchmark (make bench-web): python scripts/bench_web.py [--runs 3]

Against local mode (a subprocess on free ports, local_mode/harness.py) in Debian's
Chromium (local_mode/browser.py):

(a) First load: the bytes the browser received (Resource Timing's transferSize: headers
    and bodies as sent, gzip-compressed by local mode's server because Chromium asks for
    it) for everything the console loads before it can be used: the page, its style
    sheet, its modules and config.json, with an empty cache. CloudFront compresses the
    same files (gzip or Brotli) for the deployed console, so this is close to what it
    sends. Goal: at most 100 KB.
(b) The time from clicking Test to the first text of the answer on screen, the median of
    --runs tests (each a fresh run through the API, ECS emulation and the runner).
    Reported, no target: local mode's stand-ins answer at once, so this is the
    platform's own latency (launch, task start, log polling), not a model's.

Prints the figures and their ratio to the goal; exits 1 if the first load misses it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_mode.browser import launch_chromium
from local_mode.harness import LocalMode, start_local_mode, stop_local_mode

FIRST_LOAD_GOAL_BYTES = 100 * 1024
AGENT = {"name": "bench", "model": "amazon.nova-micro-v1:0", "instructions": "Be brief."}

FIRST_LOAD = """() => {
  const entries = [...performance.getEntriesByType('navigation'),
                   ...performance.getEntriesByType('resource')];
  return entries.map(e => ({name: e.name, transfer: e.transferSize,
                            encoded: e.encodedBodySize, decoded: e.decodedBodySize}));
}"""


def first_load(browser: Any, local: LocalMode) -> list[dict[str, Any]]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(local.url + "/")
    page.get_by_role("button", name="Sign in").wait_for()
    page.wait_for_load_state("networkidle")
    entries: list[dict[str, Any]] = page.evaluate(FIRST_LOAD)
    context.close()
    return entries


def click_to_first_answer(browser: Any, local: LocalMode, runs: int) -> list[float]:
    email = "bench-web@example.com"
    token = local.request("POST", "/_local/sign-in", body={"email": email}).body["accessToken"]
    agent = local.request("POST", "/agents", token=token, body=AGENT).body
    context = browser.new_context()
    page = context.new_page()
    page.goto(local.url + "/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Agents").wait_for()
    timings: list[float] = []
    for _ in range(runs):
        page.goto(f"{local.url}/#/agents/{agent['agentId']}")
        page.reload()  # a fresh screen: no answer from the previous run
        page.get_by_role("button", name="Test", exact=True).wait_for()
        began = time.perf_counter()
        page.get_by_role("button", name="Test", exact=True).click()
        page.wait_for_function(
            "() => (document.querySelector('pre.answer')?.textContent ?? '').length > 0",
            timeout=60_000,
        )
        timings.append(time.perf_counter() - began)
        page.get_by_role("heading", name="Result").wait_for(timeout=60_000)
    context.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="tests to time (default 3)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-web-") as scratch:
        local = start_local_mode(
            Path(scratch) / "local-mode.log",
            f"freeTestsPerMonth={max(10, args.runs)}",
            "launchesPerMinute=100",
        )
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    entries = first_load(browser, local)
                    timings = click_to_first_answer(browser, local, args.runs)
                finally:
                    browser.close()
        finally:
            stop_local_mode(local)

    transferred = sum(int(e["transfer"]) for e in entries)
    decoded = sum(int(e["decoded"]) for e in entries)
    print("(a) first load, empty cache (transferSize: gzip as local mode sends it):")
    for entry in entries:
        name = entry["name"].split("/", 3)[-1] or "/"
        print(f"  /{name:<28} {entry['transfer']:>7,} B sent  {entry['decoded']:>7,} B unpacked")
    ratio = transferred / FIRST_LOAD_GOAL_BYTES
    print(
        f"  total {transferred:,} B transferred ({decoded:,} B uncompressed), "
        f"{len(entries)} requests; goal {FIRST_LOAD_GOAL_BYTES:,} B: ratio {ratio:.3f}"
    )
    median = statistics.median(timings)
    print(
        f"(b) click Test -> first answer text: median {median:.2f} s over {len(timings)} runs "
        f"({', '.join(f'{t:.2f}' for t in timings)} s)"
    )
    if transferred > FIRST_LOAD_GOAL_BYTES:
        print("first load: goal missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
