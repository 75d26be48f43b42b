#!/usr/bin/env python3
"""CDK entry point: load the config once, build the stacks, attach cdk-nag, synth."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.app_builder import build_app

app = cdk.App()
build_app(app)
app.synth()
