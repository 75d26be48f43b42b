"""Write the customer onboarding templates to dist/, and keep their version lock honest.

    python scripts/export_templates.py                # dist/customer-onboarding.yaml and
                                                      # dist/organization-onboarding.yaml
    python scripts/export_templates.py --update-lock  # after bumping templateVersion

Config comes from cdk.json's context (`-c key=value` overrides it, as with `cdk synth`).
The lock file (`stacks/customer_onboarding.lock`) holds `<templateVersion> <sha256 of the
rendered customer template>`; tests fail when the template changes and the lock does not,
so a changed template always ships under a new version.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from local_mode.assembly import cdk_context, context_overrides  # noqa: E402
from stacks.config import ConfigError, PlatformConfig  # noqa: E402
from stacks.onboarding_templates import (  # noqa: E402
    render_customer_template,
    render_organization_template,
)

LOCK_FILE = ROOT / "stacks" / "customer_onboarding.lock"
UPDATE_LOCK_COMMAND = "python scripts/export_templates.py --update-lock"


def template_hash(template: str) -> str:
    return hashlib.sha256(template.encode()).hexdigest()


def lock_line(config: PlatformConfig, template: str) -> str:
    return f"{config.template_version} {template_hash(template)}\n"


def load_config(overrides: list[str]) -> PlatformConfig:
    try:
        context = cdk_context(context_overrides(overrides))
    except ValueError as exc:
        raise SystemExit(f"-c expects key=value: {exc}") from None
    try:
        return PlatformConfig.from_context(context.get)
    except ConfigError as exc:
        raise SystemExit(f"Invalid configuration: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="override"
    )
    parser.add_argument(
        "--update-lock",
        action="store_true",
        help="record the current templateVersion and template hash in the lock file",
    )
    args = parser.parse_args(argv)
    if args.update_lock and args.context:
        parser.error("--update-lock records cdk.json's defaults: run it without -c")
    config = load_config(args.context)
    customer = render_customer_template(config)
    organization = render_organization_template(config)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("customer-onboarding.yaml", customer),
        ("organization-onboarding.yaml", organization),
    ):
        (args.out / name).write_text(text)
        print(f"{args.out / name}: {len(text.encode())} bytes")
    if args.update_lock:
        LOCK_FILE.write_text(lock_line(config, customer))
        print(f"{LOCK_FILE.relative_to(ROOT)}: {lock_line(config, customer).strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
