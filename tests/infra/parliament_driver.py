"""Runs inside parliament's own virtual environment (.venv-parliament), not the app's.

stdin: a JSON list of {"id": str, "document": policy document}; stdout: a JSON list of
{"id", "issue", "title", "severity", "detail"}, one per finding, community auditors on.
One process for every document: parliament loads its IAM reference data once.
"""

from __future__ import annotations

import json
import sys

from parliament import analyze_policy_string


def main() -> None:
    findings = []
    for item in json.load(sys.stdin):
        policy = analyze_policy_string(
            json.dumps(item["document"]),
            filepath=item["id"],
            include_community_auditors=True,
        )
        for finding in policy.findings:
            findings.append(
                {
                    "id": item["id"],
                    "issue": finding.issue,
                    "title": finding.title,
                    "severity": finding.severity,
                    "detail": json.loads(json.dumps(finding.detail, default=str)),
                }
            )
    json.dump(findings, sys.stdout)


if __name__ == "__main__":
    main()
