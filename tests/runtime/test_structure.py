"""Where things live in lambda_src (STYLE.md "Runtime side"), checked on the source text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
PACKAGE = LAMBDA_SRC / "agent_builder"


def sources_with(pattern: str) -> set[str]:
    found = set()
    for path in LAMBDA_SRC.rglob("*.py"):
        if re.search(pattern, path.read_text()):
            found.add(path.relative_to(LAMBDA_SRC).as_posix())
    return found


def test_one_helper_runs_every_dynamodb_transaction_and_reads_its_cancellation() -> None:
    assert sources_with(r"transact_write_items\(") == {"agent_builder/repositories/dynamo.py"}
    assert sources_with(r"CancellationReasons|TransactionCanceled") == {
        "agent_builder/repositories/dynamo.py"
    }


@pytest.mark.parametrize(
    "storage_shape",
    [r"\bTableName\b", r'\{"S":', r"statusRank", r"ConditionExpression", r'"Put":'],
)
def test_only_repositories_build_dynamodb_requests(storage_shape: str) -> None:
    outside = {
        path
        for path in sources_with(storage_shape)
        if not path.startswith("agent_builder/repositories/")
    }

    assert outside == set()


def test_only_the_settings_module_reads_the_environment() -> None:
    assert sources_with(r"os\.environ|os\.getenv") == {"agent_builder/settings.py"}


def test_one_module_builds_runs_and_pages_their_logs() -> None:
    # The run's fields and the API's log page are written in agent_builder/runs.py only.
    assert sources_with(r'"requestHash":') == {"agent_builder/runs.py"}
    assert sources_with(r'"lines":') == {"agent_builder/runs.py"}
    assert sources_with(r"datetime\.fromtimestamp") == {"agent_builder/runs.py"}
