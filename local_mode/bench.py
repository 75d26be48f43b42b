"""Local mode's figures: time to healthy, and requests per second for GET /me and for
test launches (200 sequential requests each).

    python -m local_mode.bench [--requests 200]

Starts local mode as a subprocess on free ports, synthesized with a quota and rate
limit high enough for the launches (freeTestsPerMonth=1000, launchesPerMinute=600),
measures, and stops it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from local_mode.harness import start_local_mode, stop_local_mode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_FUNCTION_LOG_LEVEL", "WARNING")

    with tempfile.TemporaryDirectory() as scratch:
        local = start_local_mode(
            Path(scratch) / "local-mode.log",
            "freeTestsPerMonth=1000",
            "launchesPerMinute=600",
            # Tasks are picked up after the measurement: the launch route is measured,
            # not 200 agent-runner processes competing with it for the CPU.
            LOCAL_TASK_POLL_SECONDS=os.environ.get("LOCAL_TASK_POLL_SECONDS", "3600"),
        )
        try:
            token = local.sign_in("bench@example.com")
            agent = local.request(
                "POST",
                "/agents",
                token=token,
                body={
                    "name": "bench",
                    "model": "amazon.nova-micro-v1:0",
                    "instructions": "Be brief.",
                },
            ).body
            began = time.perf_counter()
            for _ in range(args.requests):
                assert local.request("GET", "/me", token=token).status == 200
            me_rps = args.requests / (time.perf_counter() - began)
            began = time.perf_counter()
            for number in range(args.requests):
                answer = local.request(
                    "POST",
                    f"/agents/{agent['agentId']}/tests",
                    token=token,
                    body={"input": f"bench {number}"},
                )
                assert answer.status == 202, answer.body
            launch_rps = args.requests / (time.perf_counter() - began)
        finally:
            code = stop_local_mode(local)
    print(
        f"time to healthy (incl. synth): {local.healthy_after:.1f} s "
        f"(local mode itself: {local.info['startedInSeconds']:.1f} s)"
    )
    print(f"GET /me:        {me_rps:.0f} req/s over {args.requests} sequential requests")
    print(f"test launches:  {launch_rps:.0f} req/s over {args.requests} sequential requests")
    print(f"shutdown exit code: {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
