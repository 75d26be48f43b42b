"""Synthesize once, test many: fixtures that build the app from cdk.json context."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from stacks.app_builder import Platform, build_app

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def default_context() -> dict[str, Any]:
    """cdk.json's context: the defaults a platform owner gets."""
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


# The "configured" deployment: every optional sign-in provider set (the suite synthesizes
# this and the defaults). The GitHub bridge's keys join this one dict.
# GitHub sign-in through the OIDC bridge (a test client id and secret name).
GITHUB_CONTEXT: dict[str, Any] = {
    "githubClientId": "Iv1.0123456789abcdef",
    "githubClientSecretName": "agent-builder/github-oauth",
}
CONFIGURED_SIGN_IN: dict[str, Any] = {
    "googleClientId": "123456789012-abcdefghijklmnop.apps.googleusercontent.com",
    "googleClientSecretName": "agent-builder/google-client-secret",
    "blockedEmailDomains": ["spam.example"],
    **GITHUB_CONTEXT,
    # Not sign-in, but optional the same way: the KMS key of members' IAM Identity Center
    # tokens (Tier 3 deploys with a member's session).
    "enterpriseSso": True,
}


def make_app(outdir: Path, nag: bool = True, **overrides: Any) -> tuple[cdk.App, Platform]:
    context = default_context() | overrides
    app = cdk.App(context=context, outdir=str(outdir))
    return app, build_app(app, nag=nag)


class Synthesized:
    """One synthesized app: its stacks' templates and where they were written."""

    def __init__(self, app: cdk.App, platform: Platform) -> None:
        self.app = app
        self.platform = platform
        self.assembly = app.synth()
        self.outdir = Path(self.assembly.directory)

    def template(self, stack: cdk.Stack) -> assertions.Template:
        return assertions.Template.from_json(
            self.assembly.get_stack_by_name(stack.stack_name).template
        )

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Synthesized]:
    """Synthesize the app with context overrides, caching each distinct config."""
    cache: dict[str, Synthesized] = {}

    def _synth(**overrides: Any) -> Synthesized:
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            app, platform = make_app(tmp_path_factory.mktemp("cdk.out"), **overrides)
            cache[key] = Synthesized(app, platform)
        return cache[key]

    return _synth


@pytest.fixture(scope="session")
def default_app(synth: Callable[..., Synthesized]) -> Iterator[Synthesized]:
    yield synth()


@pytest.fixture(scope="session")
def configured_app(synth: Callable[..., Synthesized]) -> Iterator[Synthesized]:
    """The app with every optional sign-in provider configured (CONFIGURED_SIGN_IN)."""
    yield synth(**CONFIGURED_SIGN_IN)


def identity_provider(template: Any, provider_type: str) -> tuple[str, dict[str, Any]]:
    """The one identity provider of `provider_type` (Google, OIDC, SAML): (logical id, it)."""
    (found,) = [
        (lid, resource)
        for lid, resource in template.find_resources(
            "AWS::Cognito::UserPoolIdentityProvider"
        ).items()
        if resource["Properties"]["ProviderType"] == provider_type
    ]
    return found
