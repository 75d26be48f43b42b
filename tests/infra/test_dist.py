"""dist/ holds what we hand out (onboarding templates, OpenAPI): never stale in git."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stacks.config import PlatformConfig
from stacks.onboarding_templates import (
    handed_out,
    render_customer_template,
    render_organization_template,
)
from tests.infra.conftest import ROOT, default_context


@pytest.fixture(scope="module")
def config() -> PlatformConfig:
    return PlatformConfig.from_context(default_context().get)


@pytest.mark.parametrize(
    ("name", "render"),
    [
        ("customer-onboarding.yaml", render_customer_template),
        ("organization-onboarding.yaml", render_organization_template),
    ],
)
def test_committed_template_is_what_the_code_renders(
    name: str, render: object, config: PlatformConfig
) -> None:
    committed = (ROOT / "dist" / name).read_text()
    assert committed == render(handed_out(config)), (
        f"dist/{name} is stale: run `make synth` and commit it"
    )  # type: ignore[operator]


def test_committed_openapi_document_is_what_the_code_generates() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/export_openapi.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
