"""After `cdk destroy --all`: delete what AWS created outside CloudFormation for the stacks.

Lambda creates `/aws/lambda/<function>` log groups on first invocation. Our own functions'
groups belong to the stacks, but CDK's helper functions (S3 auto-delete, default security
group restriction, template upload, image copy) are named `<stack name>-<id>-<suffix>` by
CloudFormation and their groups survive the stacks. This deletes exactly those, and only
once none of the platform's stacks exists any more.

    python scripts/cleanup_leftovers.py [--prefix agent-builder] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_mode.assembly import load_stacks, project_prefix, synthesized  # noqa: E402


def stack_suffixes() -> tuple[str, ...]:
    """The app's stacks' names without the prefix (platform, identity, control-plane), as
    the synthesized app names them (`cdk destroy` has just synthesized it)."""
    return tuple(stack.short_name for stack in load_stacks(synthesized()).values())


def leftover_log_groups(logs: Any, prefix: str, suffixes: Sequence[str]) -> list[str]:
    names: list[str] = []
    for suffix in suffixes:
        pattern = f"/aws/lambda/{prefix}-{suffix}-"
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=pattern):
            names += [group["logGroupName"] for group in page["logGroups"]]
    return sorted(names)


def live_stacks(cloudformation: Any, prefix: str, suffixes: Sequence[str]) -> list[str]:
    live = []
    for suffix in suffixes:
        name = f"{prefix}-{suffix}"
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except cloudformation.exceptions.ClientError:
            continue  # "does not exist"
        if any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks):
            live.append(name)
    return live


def cleanup(
    *, prefix: str, dry_run: bool, session: Any = None, suffixes: Sequence[str] | None = None
) -> list[str]:
    session = session or boto3.session.Session()
    suffixes = stack_suffixes() if suffixes is None else suffixes
    live = live_stacks(session.client("cloudformation"), prefix, suffixes)
    if live:
        raise SystemExit(f"refusing to clean up while stacks still exist: {', '.join(live)}")
    logs = session.client("logs")
    names = leftover_log_groups(logs, prefix, suffixes)
    for name in names:
        print(("would delete " if dry_run else "deleting ") + name)
        if not dry_run:
            logs.delete_log_group(logGroupName=name)
    if not names:
        print("nothing left behind")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=project_prefix())
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    cleanup(prefix=args.prefix, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
