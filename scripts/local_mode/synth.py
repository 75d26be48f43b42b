"""Synthesize the app into another directory with context overrides (no CDK CLI).

Local mode normally reads cdk.out from `make synth`. For a different configuration
(a benchmark with a high quota, tests with a tiny one) it synthesizes into a
directory of its own: cdk.json's context plus the overrides, exactly what
`cdk synth -c key=value` would pass. cdk-nag is off here: it only validates, the
templates are the same, and local mode must not depend on a clean nag report of
work in progress.

Run as a program by `synthesize` (the jsii runtime stays out of local mode's process):
    python -m scripts.local_mode.synth  (with CDK_OUTDIR and CDK_CONTEXT_JSON set)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values that read as JSON (numbers, booleans, lists) are JSON."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"context override {pair!r} is not key=value")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    return overrides


def synthesize(outdir: Path, overrides: dict[str, Any]) -> None:
    context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    context.update(overrides)
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get(
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local_mode.synth"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"synth failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


def _main() -> None:
    sys.path.insert(0, str(ROOT))
    import aws_cdk as cdk

    from stacks.app_builder import build_app

    app = cdk.App()
    build_app(app, nag=False)
    app.synth()


if __name__ == "__main__":
    _main()
