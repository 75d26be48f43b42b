"""make destroy's last step: only CDK helper log groups, only once the stacks are gone."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "cleanup_leftovers", ROOT / "scripts" / "cleanup_leftovers.py"
)
assert spec and spec.loader
cleanup_leftovers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cleanup_leftovers)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def make_groups(session: Any, *names: str) -> None:
    for name in names:
        session.client("logs").create_log_group(logGroupName=name)


def remaining(session: Any) -> set[str]:
    return {g["logGroupName"] for g in session.client("logs").describe_log_groups()["logGroups"]}


def test_deletes_only_log_groups_of_cdk_helper_functions_of_our_stacks(session: Any) -> None:
    make_groups(
        session,
        "/aws/lambda/agent-builder-platform-CustomS3AutoDeleteObjectsCu-AbC123",
        "/aws/lambda/agent-builder-control-plane-CustomCDKECRDeployment-XyZ",
        "/aws/lambda/agent-builder-api",  # not a helper: its stack owned it
        "/aws/lambda/other-platform-Something-123",
        "/agent-builder/agent-runs",
    )
    deleted = cleanup_leftovers.cleanup(prefix="agent-builder", dry_run=False, session=session)
    assert len(deleted) == 2
    assert remaining(session) == {
        "/aws/lambda/agent-builder-api",
        "/aws/lambda/other-platform-Something-123",
        "/agent-builder/agent-runs",
    }


def test_dry_run_deletes_nothing(session: Any) -> None:
    make_groups(session, "/aws/lambda/agent-builder-identity-Helper-1")
    assert cleanup_leftovers.cleanup(prefix="agent-builder", dry_run=True, session=session) == [
        "/aws/lambda/agent-builder-identity-Helper-1"
    ]
    assert remaining(session) == {"/aws/lambda/agent-builder-identity-Helper-1"}


def test_refuses_while_a_platform_stack_still_exists(session: Any) -> None:
    make_groups(session, "/aws/lambda/agent-builder-platform-Helper-1")
    session.client("cloudformation").create_stack(
        StackName="agent-builder-platform",
        TemplateBody='{"Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}',
    )
    with pytest.raises(SystemExit, match="agent-builder-platform"):
        cleanup_leftovers.cleanup(prefix="agent-builder", dry_run=False, session=session)
    assert remaining(session) == {"/aws/lambda/agent-builder-platform-Helper-1"}


def test_the_stacks_looked_for_are_the_synthesized_apps_stacks() -> None:
    # The deployed stacks' names: renaming one would orphan what it deployed.
    assert sorted(cleanup_leftovers.stack_suffixes()) == ["control-plane", "identity", "platform"]
