"""`make local`: the control plane on this machine, on an embedded AWS emulator.

    python -m local_mode                         # templates from cdk.out
    python -m local_mode -c freeTestsPerMonth=3  # synthesize with overrides first

Ports: LOCAL_AWS_PORT (4566), LOCAL_API_PORT (8080). Timers: LOCAL_TASK_POLL_SECONDS,
LOCAL_SCHEDULER_POLL_SECONDS, LOCAL_SWEEPER_SECONDS, LOCAL_STOP_GRACE_SECONDS.
See docs/local-mode.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from local_mode.assembly import CDK_OUT, TemplateError, context_overrides, synthesize
from local_mode.platform import ClaimsProvider, LocalPlatform, Options


def main(
    argv: list[str] | None = None, *, claims_providers: Mapping[str, ClaimsProvider] | None = None
) -> int:
    """`claims_providers`: extra `/_local/sign-in` providers (name -> claims for an e-mail),
    e.g. `github` from the OIDC bridge's GitHub stand-in."""
    parser = argparse.ArgumentParser(prog="python -m local_mode", description=__doc__)
    parser.add_argument(
        "--cdk-out",
        type=Path,
        default=Path(os.environ.get("LOCAL_CDK_OUT") or CDK_OUT),
        help="synthesized templates to build the emulated platform from (default: cdk.out)",
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="synthesize first, into a temporary directory, with this context override",
    )
    parser.add_argument("--synth", action="store_true", help="synthesize first, no overrides")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for chatty in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    with tempfile.TemporaryDirectory(prefix="agent-builder-local-") as scratch:
        cdk_out = args.cdk_out
        if args.context or args.synth:
            cdk_out = Path(scratch) / "cdk.out"
            print(f"synthesizing into {cdk_out} ...", flush=True)
            try:
                synthesize(cdk_out, context_overrides(args.context))
            except (TemplateError, ValueError) as exc:
                print(f"local mode: {exc}", file=sys.stderr)
                return 2
        platform = LocalPlatform(
            Options.from_environment(cdk_out), claims_providers=claims_providers
        )
        try:
            platform.start()
        except TemplateError as exc:
            print(f"local mode: {exc}", file=sys.stderr)
            platform.stop()
            return 2
        except BaseException:
            platform.stop()
            raise
        api = platform.api_url
        print(
            f"\nagent-builder local mode is up in {platform.started_in:.1f} s\n"
            f"  HTTP API        {api}   (OpenAPI: {api}/_local/openapi.json)\n"
            f"  embedded AWS    {platform.emulator.endpoint}   (region {platform.options.region})\n"
            f"  try it          TOKEN=$(curl -s -X POST {api}/_local/sign-in -d "
            f'\'{{"email":"me@example.com"}}\' | python3 -c \'import json,sys;'
            f'print(json.load(sys.stdin)["accessToken"])\') && curl -s -H "Authorization: Bearer '
            f'$TOKEN" {api}/me\n'
            f"  stop            Ctrl-C\n",
            flush=True,
        )
        try:
            stop.wait()
        finally:
            print("local mode: stopping ...", flush=True)
            platform.stop()
    print("local mode: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
