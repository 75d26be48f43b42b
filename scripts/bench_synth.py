"""Whole-app synth time against an empty one-stack CDK app (target: ratio <= 2.5).

Runs both as fresh interpreters, alternating so machine noise hits both alike, five
times each in this one invocation, and prints the medians and their ratio. Synth here
is what `cdk synth` runs: `python app.py` with cdk.json's context.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_mode.assembly import cdk_context  # noqa: E402

RUNS = 5
TARGET = 2.5
# CloudFormation rejects a template without resources, so "empty" holds one no-op handle.
EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App()
stack = cdk.Stack(app, "Empty")
cdk.CfnWaitConditionHandle(stack, "Placeholder")
app.synth()
"""


def timed(args: list[str], env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        started = time.perf_counter()
        subprocess.run(
            args, cwd=ROOT, env=env | {"CDK_OUTDIR": outdir}, check=True, capture_output=True
        )
        return time.perf_counter() - started


def main() -> int:
    env = dict(os.environ) | {
        "CDK_CONTEXT_JSON": json.dumps(cdk_context()),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as empty:
        empty.write(EMPTY_APP)
    whole: list[float] = []
    baseline: list[float] = []
    try:
        for run in range(RUNS):
            baseline.append(timed([sys.executable, empty.name], env))
            whole.append(timed([sys.executable, "app.py"], env))
            print(
                f"run {run + 1}: empty app {baseline[-1]:.2f} s, whole app {whole[-1]:.2f} s",
                flush=True,
            )
    finally:
        os.unlink(empty.name)
    ratio = statistics.median(whole) / statistics.median(baseline)
    print(f"median empty app: {statistics.median(baseline):.2f} s")
    print(f"median whole app: {statistics.median(whole):.2f} s")
    print(f"ratio whole/empty: {ratio:.2f} (target <= {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
