"""Local mode's figures, in one run:

- time to healthy;
- `GET /me` requests per second on ONE keep-alive connection and with a NEW connection
  per request, and their ratio (keep-alive ÷ new connection; target >= 1.0: a browser
  keeps its connection, and must not be slower for it);
- connection resets in a burst of concurrent `GET /me` (50 by default; target 0);
- test launches per second (sequential requests).

    python -m local_mode.bench [--requests 200] [--burst 50]

Starts local mode as a subprocess on free ports, synthesized with a quota and rate
limit high enough for the launches (freeTestsPerMonth=1000, launchesPerMinute=600), and
the owner's ceilings out of the way (maxConcurrentTestTasks=1000: the launched tasks are
not run while it measures, so each holds its slot; platformFreeTestsPerMonth=0),
measures, stops it, and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from local_mode.harness import LocalMode, start_local_mode, stop_local_mode

MIN_KEEP_ALIVE_RATIO = 1.0
MAX_BURST_RESETS = 0
# Linux retries a dropped SYN after 1 s: a connect slower than this had no room to wait in.
CONNECT_TIMEOUT = 0.9
Address = tuple[str, int]


def time_get(
    connection: http.client.HTTPConnection, path: str, headers: Mapping[str, str] | None
) -> float:
    """Seconds for one `GET path` on `connection` (its connect included, if it has none)."""
    began = time.perf_counter()
    connection.request("GET", path, headers=dict(headers or {}))
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - began
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    if response.will_close:
        raise RuntimeError(f"GET {path}: the server closed an HTTP/1.1 connection")
    return elapsed


Round = tuple[list[float], list[float]]  # seconds per request: keep-alive, new connection


def keep_alive_and_new_connections(
    address: Address,
    path: str,
    count: int,
    *,
    headers: Mapping[str, str] | None = None,
    rounds: int | None = None,
) -> list[Round]:
    """Seconds per `GET path`: `count` on ONE keep-alive connection, `count` on a new
    connection each, interleaved in `rounds` (by default one request of each per round,
    the order alternating) so the machine's load weighs on both alike."""
    rounds = rounds or count
    kept_connection = http.client.HTTPConnection(*address, timeout=30)
    results: list[Round] = []
    try:
        for number in range(rounds):
            share = count // rounds + (1 if number < count % rounds else 0)
            kept: list[float] = []
            fresh: list[float] = []
            for keep in (True, False) if number % 2 == 0 else (False, True):
                for _ in range(share):
                    if keep:
                        socket_before = kept_connection.sock
                        kept.append(time_get(kept_connection, path, headers))
                        if socket_before is not None and kept_connection.sock is not socket_before:
                            raise RuntimeError("the keep-alive connection was reopened")
                        continue
                    connection = http.client.HTTPConnection(*address, timeout=30)
                    try:
                        fresh.append(time_get(connection, path, headers))
                    finally:
                        connection.close()
            results.append((kept, fresh))
    finally:
        kept_connection.close()
    return results


def burst(
    address: Address, path: str, size: int, *, headers: Mapping[str, str] | None = None
) -> Counter[str]:
    """`size` concurrent `GET path`, each on its own new connection, released together:
    how many got each status, or each kind of connection failure.

    A connection the server's listen queue has no room for is reset, or its SYN is
    dropped and retried a second later: a connect that takes over CONNECT_TIMEOUT counts
    as a failure too (TimeoutError), as it does for wrk or a browser under a burst.
    """
    start = threading.Barrier(size)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        connection = http.client.HTTPConnection(*address, timeout=30)
        try:
            connection.sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
            connection.sock.settimeout(30)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.request("GET", path, headers=dict(headers or {}))
            response = connection.getresponse()
            response.read()
            outcome = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            outcome = type(exc).__name__  # ConnectionResetError, RemoteDisconnected, ...
        finally:
            connection.close()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=one) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def connection_failures(outcomes: Counter[str]) -> int:
    return sum(number for outcome, number in outcomes.items() if not outcome.isdigit())


def per_second(latencies: list[float]) -> float:
    return len(latencies) / sum(latencies)


def keep_alive_figures(rounds: list[Round]) -> tuple[float, float, float]:
    """Requests per second on the keep-alive connection and with new connections, and
    keep-alive ÷ new: each the median over the rounds (with a request of each per round:
    1 / the median latency, and the median of the paired ratios), so that a pause of the
    machine (another process, a garbage collection) does not decide the figure."""
    return (
        statistics.median(per_second(kept) for kept, _ in rounds),
        statistics.median(per_second(fresh) for _, fresh in rounds),
        statistics.median(per_second(kept) / per_second(fresh) for kept, fresh in rounds),
    )


def measure(local: LocalMode, requests: int, burst_size: int) -> tuple[list[str], list[str]]:
    """The report's lines, and the targets missed."""
    token = local.sign_in("bench@example.com")
    auth = {"authorization": f"Bearer {token}"}
    address = ("127.0.0.1", local.api_port)
    agent = local.request(
        "POST",
        "/agents",
        token=token,
        body={"name": "bench", "model": "amazon.nova-micro-v1:0", "instructions": "Be brief."},
    ).body
    keep_alive_and_new_connections(address, "/me", 10, headers=auth, rounds=2)  # warm-up
    rounds = keep_alive_and_new_connections(address, "/me", requests, headers=auth)
    kept_rps, fresh_rps, ratio = keep_alive_figures(rounds)
    kept = [latency for round_kept, _ in rounds for latency in round_kept]
    fresh = [latency for _, round_fresh in rounds for latency in round_fresh]
    outcomes = burst(address, "/me", burst_size, headers=auth)
    resets = connection_failures(outcomes)
    began = time.perf_counter()
    for number in range(requests):
        answer = local.request(
            "POST",
            f"/agents/{agent['agentId']}/tests",
            token=token,
            body={"input": f"bench {number}"},
        )
        if answer.status != 202:
            raise RuntimeError(f"test launch {number} answered {answer.status}: {answer.body}")
    launch_rps = requests / (time.perf_counter() - began)

    def p50(latencies: list[float]) -> str:
        return f"p50 {statistics.median(latencies) * 1000:.1f} ms"

    lines = [
        f"GET /me, one keep-alive connection:     {kept_rps:6.0f} req/s "
        f"({p50(kept)}, {requests} requests)",
        f"GET /me, a new connection per request:  {fresh_rps:6.0f} req/s "
        f"({p50(fresh)}, {requests} requests)",
        f"keep-alive / new connection:            {ratio:6.2f}  (target >= {MIN_KEEP_ALIVE_RATIO}; "
        f"medians over {len(rounds)} alternating pairs)",
        f"burst of {burst_size} concurrent GET /me:       {resets:6d} connection resets  "
        f"(target {MAX_BURST_RESETS}; outcomes {dict(sorted(outcomes.items()))})",
        f"test launches:                          {launch_rps:6.0f} req/s "
        f"({requests} sequential requests)",
    ]
    missed = []
    if ratio < MIN_KEEP_ALIVE_RATIO:
        missed.append(f"keep-alive ratio {ratio:.2f} < {MIN_KEEP_ALIVE_RATIO}")
    if resets > MAX_BURST_RESETS:
        missed.append(f"{resets} connection resets in a burst of {burst_size}")
    return lines, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_FUNCTION_LOG_LEVEL", "WARNING")

    with tempfile.TemporaryDirectory() as scratch:
        local = start_local_mode(
            Path(scratch) / "local-mode.log",
            "freeTestsPerMonth=1000",
            "launchesPerMinute=600",
            "maxConcurrentTestTasks=1000",
            "platformFreeTestsPerMonth=0",
            # Tasks are picked up after the measurement: the launch route is measured,
            # not 200 agent-runner processes competing with it for the CPU.
            LOCAL_TASK_POLL_SECONDS=os.environ.get("LOCAL_TASK_POLL_SECONDS", "3600"),
        )
        try:
            lines, missed = measure(local, args.requests, args.burst)
        finally:
            code = stop_local_mode(local)
    print(
        f"time to healthy (incl. synth):          {local.healthy_after:6.1f} s "
        f"(local mode itself: {local.info['startedInSeconds']:.1f} s)"
    )
    for line in lines:
        print(line)
    print(f"shutdown exit code: {code}")
    if missed or code != 0:
        print("MISSED: " + "; ".join(missed + ([f"exit code {code}"] if code else [])))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
