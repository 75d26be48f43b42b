"""Local mode as a subprocess on free ports, and a small HTTP client to talk to it.

What the end-to-end tests and the benchmark (bench.py) start: `python -m local_mode`
with the ports, timers and context overrides they choose, waited for until
GET /_local/health answers 200, stopped with SIGTERM as Ctrl-C would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode.assembly import ROOT

HEALTHY_WITHIN_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nothing_listens_on(port: int) -> bool:
    """No server accepts on the port (closed connections may linger in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class LocalMode:
    process: subprocess.Popen[bytes]
    api_port: int
    aws_port: int
    log_path: Path
    healthy_after: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - local http URL
        request.add_header("content-type", "application/json")
        if token is not None:
            request.add_header("authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, raw, got = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, got = error.code, error.read(), error.headers
        return Answer(
            status=status,
            headers={k.lower(): v for k, v in got.items()},
            body=json.loads(raw) if raw else None,
        )

    def sign_in(self, email: str, provider: str | None = None) -> str:
        """The access token (what the API takes) of `email` signed in with e-mail or
        through `provider`."""
        return str(self.sign_in_tokens(email, provider)["accessToken"])

    def sign_in_tokens(self, email: str, provider: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"email": email}
        if provider is not None:
            body["provider"] = provider
        answer = self.request("POST", "/_local/sign-in", body=body)
        assert answer.status == 200, answer.body
        return dict(answer.body)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_local_mode(
    log_path: Path, *context: str, module: str = "local_mode", **env_overrides: str
) -> LocalMode:
    """`python -m <module>`: local_mode, or a module that calls local_mode.__main__.main
    with claims providers of its own (tests/e2e)."""
    aws_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "LOCAL_AWS_PORT": str(aws_port),
        "LOCAL_API_PORT": str(api_port),
        "LOCAL_TASK_POLL_SECONDS": "0.2",
        "LOCAL_SWEEPER_SECONDS": "2",
        "LOCAL_STOP_GRACE_SECONDS": "3",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        **env_overrides,
    }
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    args = [sys.executable, "-m", module]
    for pair in context:
        args += ["-c", pair]
    log = log_path.open("wb")
    began = time.monotonic()
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    local = LocalMode(process, api_port, aws_port, log_path)
    # Generous on purpose: a loaded machine should fail only the start-up time test
    # (tests/e2e), not every test of the module that shares this local mode.
    while time.monotonic() - began < HEALTHY_WITHIN_SECONDS + 120:
        if process.poll() is not None:
            raise AssertionError(
                f"local mode exited early ({process.returncode}):\n{local.log_tail()}"
            )
        try:
            answer = local.request("GET", "/_local/health")
            if answer.status == 200:
                local.healthy_after = time.monotonic() - began
                local.info = answer.body
                return local
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"local mode never became healthy:\n{local.log_tail()}")


def stop_local_mode(local: LocalMode) -> int:
    if local.process.poll() is None:
        local.process.send_signal(signal.SIGTERM)
        try:
            local.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            local.process.kill()
            local.process.wait()
            raise AssertionError(f"local mode ignored SIGTERM:\n{local.log_tail()}") from None
    return int(local.process.returncode)
