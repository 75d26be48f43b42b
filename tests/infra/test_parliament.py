"""parliament over every IAM policy document of every template we ship or deploy.

Templates: the app's synthesized stacks (cdk.out) and dist/*.yaml (the customer and the
organisation template, and the customer template inside the organisation's StackSet).
Documents: role trust and inline policies, AWS::IAM::Policy and ManagedPolicy, and the
resource policies of buckets, topics, queues, repositories and keys. Intrinsics are
rendered to plausible literal ARNs first (tests/infra/policy_render.py says how).
parliament runs in its own virtual environment (.venv-parliament, `make setup`), with its
community auditors; any finding not in tests/infra/parliament_allowlist.yaml fails, and so
does an allow-list entry that no longer matches anything.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ROOT, Synthesized
from tests.infra.policy_render import PolicyDocument, exports_of, policy_documents

ALLOWLIST = Path(__file__).with_name("parliament_allowlist.yaml")
DRIVER = Path(__file__).with_name("parliament_driver.py")


def parliament_python() -> str:
    python = os.environ.get("PARLIAMENT_PYTHON") or str(
        ROOT / ".venv-parliament" / "bin" / "python"
    )
    if not Path(python).exists():
        pytest.fail(
            f"parliament not found at {python}: run `make setup` (it lives in its own venv)"
        )
    return python


def shipped_templates(app: Synthesized) -> dict[str, dict[str, Any]]:
    templates = {path.name: json.loads(path.read_text()) for path in app.template_files()}
    for path in sorted((ROOT / "dist").glob("*.yaml")):
        templates[f"dist/{path.name}"] = yaml.safe_load(path.read_text())
    return templates


def all_documents(app: Synthesized) -> list[PolicyDocument]:
    templates = shipped_templates(app)
    exports = exports_of(templates)
    return [d for name, t in templates.items() for d in policy_documents(name, t, exports)]


def run_parliament(documents: list[PolicyDocument]) -> list[dict[str, Any]]:
    items = [{"id": d.location, "document": d.document} for d in documents]
    result = subprocess.run(
        [parliament_python(), str(DRIVER)],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"parliament failed: {result.stderr[-2000:]}")
    return list(json.loads(result.stdout))


def allowlist() -> list[dict[str, Any]]:
    entries = yaml.safe_load(ALLOWLIST.read_text())["findings"]
    for entry in entries:
        assert set(entry) == {"issue", "location", "reason"}, entry
        assert len(entry["reason"].split()) >= 12, f"give a reviewer a real reason: {entry}"
    return list(entries)


def allowed_by(finding: dict[str, Any], entry: dict[str, Any]) -> bool:
    """An entry names the finding's issue and globs over `template:resource:property`."""
    globs = entry["location"] if isinstance(entry["location"], list) else [entry["location"]]
    return finding["issue"] == entry["issue"] and any(
        fnmatch.fnmatchcase(finding["id"], glob) for glob in globs
    )


@pytest.fixture(scope="module")
def documents(configured_app: Synthesized) -> list[PolicyDocument]:
    """Every optional feature on (conftest.CONFIGURED_SIGN_IN: the GitHub bridge's and the
    SSO token key's policies too), a superset of the default app's documents."""
    return all_documents(configured_app)


@pytest.fixture(scope="module")
def findings(documents: list[PolicyDocument]) -> list[dict[str, Any]]:
    return run_parliament(documents)


def test_every_kind_of_policy_document_is_analysed(documents: list[PolicyDocument]) -> None:
    where = {(d.template.split("/")[0], d.kind) for d in documents}
    for template in ("Platform.template.json", "ControlPlane.template.json", "dist"):
        for kind in ("identity", "trust"):
            assert (template, kind) in where, (template, kind)
    assert ("Platform.template.json", "resource") in where
    kinds = {d.where for d in documents}
    assert {"RepositoryPolicyText", "PolicyDocument", "AssumeRolePolicyDocument"} <= kinds
    assert any(d.template.endswith("/Onboarding") for d in documents)  # the StackSet's body
    # Rendered: no intrinsic is left for parliament to misread.
    for document in documents:
        text = json.dumps(document.document)
        assert '"Ref"' not in text and '"Fn::' not in text, document.location


def test_parliament_reports_nothing_that_is_not_allow_listed_with_a_reason(
    findings: list[dict[str, Any]],
) -> None:
    entries = allowlist()
    unexpected = [f for f in findings if not any(allowed_by(f, e) for e in entries)]
    assert not unexpected, "parliament findings not in the allow-list:\n" + "\n".join(
        f"{f['issue']} {f['id']}: {json.dumps(f['detail'])[:300]}" for f in unexpected
    )


def test_every_allow_list_entry_still_matches_a_finding(findings: list[dict[str, Any]]) -> None:
    stale = [e for e in allowlist() if not any(allowed_by(f, e) for f in findings)]
    assert not stale, f"allow-list entries that match nothing (remove them): {stale}"


def test_parliament_catches_what_it_is_here_to_catch() -> None:
    """The gate can fail: a wildcard action and an unknown condition key are findings."""
    bad = PolicyDocument(
        "probe",
        "Probe",
        "PolicyDocument",
        "identity",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "ecs:RunTask",
                    "Resource": "arn:aws:ecs:us-east-1:111111111111:task-definition/x:*",
                    "Condition": {"StringEquals": {"ecs:no-such-key": "x"}},
                },
            ],
        },
    )
    issues = {f["issue"] for f in run_parliament([bad])}
    assert {"RESOURCE_STAR", "UNKNOWN_CONDITION_FOR_ACTION"} <= issues, issues
