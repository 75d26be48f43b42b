"""Write dist/openapi.json from the API's code (handlers/api.py routes and models).

Run: python scripts/export_openapi.py [--check] [-c key=value ...]. With --check, exit 1
if the file on disk differs from what the code generates (for CI). The allowed models and
the output-token cap the document states come from cdk.json's context (with `-c`
overrides, as `cdk synth -c` takes them), validated as the app validates them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.openapi import ApiLimits

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "dist" / "openapi.json"


def api_limits(pairs: Iterable[str] = ()) -> ApiLimits:
    """The deployed API function's limits, from cdk.json's context and `key=value` pairs."""
    sys.path.insert(0, str(ROOT / "lambda_src"))
    from handlers.openapi import ApiLimits
    from local_mode.assembly import cdk_context, context_overrides
    from stacks.config import PlatformConfig

    config = PlatformConfig.from_context(cdk_context(context_overrides(pairs)).get)
    return ApiLimits(
        allowed_models=tuple(config.allowed_models), max_output_tokens=config.max_output_tokens
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--output", type=Path, default=TARGET)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    limits = api_limits(args.context)
    from handlers.openapi import render

    text = render(limits)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run python scripts/export_openapi.py",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(
        f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
