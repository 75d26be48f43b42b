"""The app, synthesized without the CDK CLI: what `assembly.synthesize` runs.

    CDK_OUTDIR=<dir> CDK_CONTEXT_JSON=<json> python -m local_mode.synth

Local mode normally reads cdk.out from `make synth`. For another configuration (a
benchmark with a high quota, tests with a tiny one) it synthesizes into a directory of
its own, with cdk.json's context plus the overrides, exactly what `cdk synth -c
key=value` would pass. cdk-nag is off here: it only validates, the templates are the
same, and local mode must not depend on a clean nag report of work in progress.
"""

from __future__ import annotations

import sys

from local_mode.assembly import ROOT


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import aws_cdk as cdk

    from stacks.app_builder import build_app

    app = cdk.App()
    build_app(app, nag=False)
    app.synth()


if __name__ == "__main__":
    main()
