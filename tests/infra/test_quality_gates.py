"""Quality gates over every synthesized template: cdk-nag, cfn-lint and checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import ROOT, Synthesized, make_app


def differing_templates(default: Synthesized, configured: Synthesized) -> list[Path]:
    """The configured app's templates that differ from the defaults' (the others were
    checked already): the second configuration costs one synth, not a second full gate."""
    plain = {path.name: path.read_text() for path in default.template_files()}
    return [p for p in configured.template_files() if plain.get(p.name) != p.read_text()]


# Regions an owner is likely to deploy to; cfn-lint checks resource types exist there.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]


def checkov_binary() -> str:
    binary = os.environ.get("CHECKOV_BIN") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if not Path(binary).exists():
        pytest.fail(f"checkov not found at {binary}: run `make setup` (it lives in its own venv)")
    return binary


def run_checkov(directory: Path) -> dict:
    env = os.environ | {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            checkov_binary(),
            "-d",
            str(directory),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    if not result.stdout.strip():
        pytest.fail(f"checkov produced no report: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    return {
        "failed": [c for r in reports for c in r.get("results", {}).get("failed_checks", [])],
        "passed": sum(r.get("summary", {}).get("passed", 0) for r in reports),
        "skipped": [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])],
    }


def nag_findings(report: cdk.PolicyValidationPluginReport) -> list[str]:
    """One line per finding of cdk-nag 3's report: rule id, resource path, message."""
    return [
        f"{violation.rule_name} {resource.construct_path or resource.resource_logical_id}: "
        f"{violation.description}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]


def assert_no_nag_findings(report: cdk.PolicyValidationPluginReport) -> None:
    findings = nag_findings(report)
    assert not findings, "unacknowledged cdk-nag findings:\n" + "\n".join(findings)
    assert report.violations == []
    assert report.success


def test_cdk_nag_reports_no_unacknowledged_finding(default_app: Synthesized) -> None:
    assert_no_nag_findings(AwsSolutionsChecks().validate_scope(default_app.app))


def test_cdk_nag_reports_no_unacknowledged_finding_with_every_provider_configured(
    configured_app: Synthesized,
) -> None:
    assert_no_nag_findings(AwsSolutionsChecks().validate_scope(configured_app.app))


def test_the_configured_app_differs_from_the_default_in_its_identity_template(
    default_app: Synthesized, configured_app: Synthesized
) -> None:
    names = {path.name for path in differing_templates(default_app, configured_app)}
    assert "Identity.template.json" in names


def test_cdk_nag_would_catch_a_finding(tmp_path: Path) -> None:
    # The gate above is only worth something if it can fail.
    app, platform = make_app(tmp_path, nag=False)
    s3.Bucket(platform.platform, "Careless")  # no TLS policy, no access logs
    report = AwsSolutionsChecks().validate_scope(app)
    rules = {v.rule_name for v in report.violations}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_a_failing_nag_gate_lists_each_finding_readably(tmp_path: Path) -> None:
    app, platform = make_app(tmp_path, nag=False)
    s3.Bucket(platform.platform, "Careless")
    report = AwsSolutionsChecks().validate_scope(app)
    with pytest.raises(AssertionError) as failure:
        assert_no_nag_findings(report)
    message = str(failure.value)
    assert (
        "AwsSolutions-S1 Platform/Careless/Resource: The S3 Bucket has server access logs disabled."
        in message
    )
    assert "AwsSolutions-S10 Platform/Careless/Resource: " in message
    # Only the careless bucket: everything else in the app stays acknowledged.
    assert {line.split()[1] for line in nag_findings(report)} == {"Platform/Careless/Resource:"}


def test_synth_with_nag_attached_fails_on_a_finding(tmp_path: Path) -> None:
    app, platform = make_app(tmp_path, nag=True)
    s3.Bucket(platform.platform, "Careless")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def test_every_acknowledgement_has_a_reason(default_app: Synthesized) -> None:
    acknowledged = 0
    for construct in default_app.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    acknowledged += 1
                    assert len(str(reason)) >= 60, (construct.node.path, rule, reason)
    assert acknowledged > 0


def test_cfn_lint_finds_no_error_in_any_template(
    default_app: Synthesized, configured_app: Synthesized
) -> None:
    from cfnlint.api import lint

    templates = default_app.template_files() + differing_templates(default_app, configured_app)
    assert templates
    for path in templates:
        matches = lint(path.read_text(), regions=LINT_REGIONS)
        errors = [m for m in matches if m.rule.id.startswith("E")]
        assert errors == [], f"{path.name}: {[str(m) for m in errors]}"


def test_checkov_has_no_failed_check_and_every_skip_has_a_reason(
    default_app: Synthesized, configured_app: Synthesized, tmp_path: Path
) -> None:
    # One checkov run over both configurations (the configured one's differing templates).
    for folder, paths in (
        ("default", default_app.template_files()),
        ("configured", differing_templates(default_app, configured_app)),
    ):
        (tmp_path / folder).mkdir()
        for path in paths:
            shutil.copy(path, tmp_path / folder / path.name)
    result = run_checkov(tmp_path)
    failed = [(c["check_id"], c["resource"], c.get("file_path")) for c in result["failed"]]
    assert failed == []
    assert result["passed"] > 50
    for skipped in result["skipped"]:
        assert len(skipped.get("check_result", {}).get("suppress_comment", "")) >= 40, skipped[
            "check_id"
        ]
