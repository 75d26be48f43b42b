"""Resume the free tier now, after the budget's kill switch paused it for this month.

`make resume-free-tier` runs this with the owner's credentials. It reads the deployed
kill-switch function's own environment (lambda:GetFunctionConfiguration of
`<prefix>-budgetswitch`: the usage and audit tables, the alarm topic) and calls the same
domain code the function runs (agent_builder.services.free_tier), so the resume is
written, audited (`freetier.resume`, by the caller's IAM ARN, in the `#platform` trail)
and alarmed exactly as the function would. `--status` only shows whether it is paused.
The region comes from AWS_REGION or AWS_DEFAULT_REGION. The month's turn resumes it on
its own: the pause belongs to the month it was set in.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lambda_src"))

sys.path.insert(0, str(ROOT / "scripts"))

from teardown_plan import region_from_env  # noqa: E402  (the same region rule)

from local_mode import assembly  # noqa: E402


def function_name(prefix: str) -> str:
    """stacks/control_plane_stack.py's kill switch, named `<prefix>-<construct id>`."""
    return f"{prefix}-budgetswitch"


def switch_environment(session: Any, prefix: str) -> dict[str, str]:
    configuration = session.client("lambda").get_function_configuration(
        FunctionName=function_name(prefix)
    )
    return dict(configuration.get("Environment", {}).get("Variables", {}))


def build_switch(session: Any, environment: Mapping[str, str]) -> Any:
    from agent_builder import settings, wiring

    config = settings.parse(settings.BudgetSwitch, environment)
    return wiring.free_tier_switch(
        config, dynamodb=session.client("dynamodb"), sns=session.client("sns")
    )


def run(session: Any, prefix: str, *, status_only: bool = False) -> dict[str, Any]:
    switch = build_switch(session, switch_environment(session, prefix))
    if status_only:
        return dict(switch.status())
    caller = session.client("sts").get_caller_identity()["Arn"]
    return {"result": switch.resume(by=caller), "by": caller, **switch.status()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=assembly.project_prefix())
    parser.add_argument("--status", action="store_true", help="only show whether it is paused")
    args = parser.parse_args(argv)
    session = boto3.session.Session(region_name=region_from_env(command="make resume-free-tier"))
    try:
        outcome = run(session, args.prefix, status_only=args.status)
    except session.client("lambda").exceptions.ResourceNotFoundException:
        print(
            f"{function_name(args.prefix)} is not deployed in {session.region_name}: "
            "nothing to resume (check AWS_REGION and the prefix)",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(outcome, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
