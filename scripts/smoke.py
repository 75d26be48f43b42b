"""Smoke test of a running platform (make smoke API=<url> TOKEN=<access token>).

Walks the README's journey against any deployment, or local mode: who am I, create an
agent, test it, follow the run to its end, read its log, delete the agent. Each step
prints what it saw; the first step that fails stops the walk with exit code 1 and says
what the API answered. It spends one of the caller's monthly tests.

    python scripts/smoke.py --api https://abc.execute-api.us-east-1.amazonaws.com --token ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"STOPPED", "FAILED"}


class SmokeFailed(Exception):
    pass


@dataclass
class Answer:
    status: int
    body: Any


class Client:
    def __init__(self, api: str, token: str, timeout: float = 30) -> None:
        if not api.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise SystemExit("--api must be an https:// URL (or local mode's http://127.0.0.1:...)")
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        # The scheme was checked in __init__: https, or local mode on the loopback.
        request = urllib.request.Request(self.api + path, data=data, method=method)  # noqa: S310
        request.add_header("authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("content-type", "application/json")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except urllib.error.URLError as exc:
            raise SmokeFailed(f"{method} {path}: cannot reach {self.api}: {exc.reason}") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(status, parsed)

    def expect(self, status: int, method: str, path: str, body: Any = None, **headers: str) -> Any:
        answer = self.call(method, path, body, **headers)
        if answer.status != status:
            raise SmokeFailed(
                f"{method} {path}: expected {status}, got {answer.status}: {answer.body}"
            )
        return answer.body


def walk(
    client: Client, *, model: str, wait_seconds: float, poll_seconds: float = 2
) -> dict[str, Any]:
    me = client.expect(200, "GET", "/me")
    usage = me.get("usage", {})
    print(
        f"signed in as {me.get('userId')} ({me.get('tier')}), tests used "
        f"{usage.get('testsUsed')}/{usage.get('testsLimit')} in {usage.get('month')}"
    )
    agent = client.expect(
        201,
        "POST",
        "/agents",
        {"name": "smoke-test", "model": model, "instructions": "Answer in one short sentence."},
    )
    agent_id = agent["agentId"]
    print(f"created agent {agent_id} on {model}")
    try:
        run = client.expect(
            202,
            "POST",
            f"/agents/{agent_id}/tests",
            {"input": "Say hello to the smoke test."},
            Idempotency_Key=f"smoke-{uuid.uuid4()}",
        )
        run_id = run["runId"]
        print(f"launched run {run_id} ({run['status']})")
        deadline = time.monotonic() + wait_seconds
        seen = run["status"]
        while seen not in TERMINAL:
            if time.monotonic() > deadline:
                raise SmokeFailed(f"run {run_id} still {seen} after {wait_seconds:.0f}s")
            time.sleep(poll_seconds)
            run = client.expect(200, "GET", f"/runs/{run_id}")
            if run["status"] != seen:
                seen = run["status"]
                print(f"run {run_id}: {seen}")
        logs = client.expect(200, "GET", f"/runs/{run_id}/logs")
        lines = [line["message"] for line in logs.get("lines", [])]
        print(f"log: {len(lines)} lines" + (f", first: {lines[0][:80]}" if lines else ""))
        if run["status"] != "STOPPED" or run.get("exitCode") != 0:
            raise SmokeFailed(
                f"run {run_id} ended {run['status']} with exit code {run.get('exitCode')}: "
                f"{run.get('stopReason')}"
            )
        return run
    finally:
        client.expect(204, "DELETE", f"/agents/{agent_id}")
        print(f"deleted agent {agent_id}")


def main(argv: list[str] | None = None) -> int:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the ApiUrl output (or local mode's URL)")
    parser.add_argument(
        "--token", required=True, help="a Cognito access token (the API refuses ID tokens)"
    )
    parser.add_argument("--model", default=context["allowedModels"][0])
    parser.add_argument(
        "--wait", type=float, default=(int(context["maxTestMinutes"]) + 2) * 60, help="seconds"
    )
    args = parser.parse_args(argv)
    try:
        walk(Client(args.api, args.token), model=args.model, wait_seconds=args.wait)
    except SmokeFailed as exc:
        print(f"smoke test failed: {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
