"""Config: cdk.json context becomes one frozen, validated PlatformConfig."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from stacks.config import CONTEXT_KEYS, ConfigError, PlatformConfig
from tests.infra.conftest import ROOT, default_context


def parse(**overrides: Any) -> PlatformConfig:
    context = default_context() | overrides
    return PlatformConfig.from_context(context.get)


def test_defaults_from_cdk_json() -> None:
    config = parse()
    assert config.prefix == "agent-builder"
    assert config.free_tests_per_month == 10
    assert config.max_test_minutes == 5
    assert config.retain_data is False
    assert config.test_task_architecture == "ARM64"
    assert config.test_task_use_spot is True
    assert config.alarm_email is None


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse().project_name = "other"  # type: ignore[misc]


def test_every_key_has_a_default_in_cdk_json() -> None:
    assert set(CONTEXT_KEYS) <= set(default_context())


def test_values_given_on_the_command_line_as_strings_are_parsed() -> None:
    config = parse(
        freeTestsPerMonth="3",
        retainData="true",
        testTaskUseSpot="false",
        allowedModels="amazon.nova-micro-v1:0,amazon.nova-lite-v1:0",
    )
    assert config.free_tests_per_month == 3
    assert config.retain_data is True
    assert config.test_task_use_spot is False
    assert config.allowed_models == ("amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0")


def test_round_trips_through_context_spelling() -> None:
    config = parse(alarmEmail="ops@example.com")
    assert PlatformConfig.from_context(config.as_context().get) == config


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("projectName", "Agent_Builder", "lowercase letters, digits and hyphens"),
        ("projectName", "a" * 21, "at most 20 characters"),
        ("alarmEmail", "not-an-email", "an e-mail address"),
        ("monthlyBudgetUsd", "lots", "1..1000000"),
        ("freeTestsPerMonth", -1, "0..10000"),
        ("maxTestMinutes", 0, "1..60"),
        ("maxConcurrentTestTasks", True, "1..1000"),
        ("platformFreeTestsPerMonth", -5, "0..10000000"),
        ("maxAgentsPerUser", 0, "1..10000"),
        ("testTaskCpu", 300, "[256, 512, 1024, 2048, 4096]"),
        ("testTaskMemoryMiB", 4096, "[512, 1024, 2048]"),
        ("testTaskArchitecture", "arm", "ARM64, X86_64"),
        ("testTaskUseSpot", "yes", "true, false"),
        ("allowedModels", [], "non-empty list"),
        ("allowedModels", ["gpt-4"], "Bedrock model ids"),
        ("retainData", "maybe", "true, false"),
        ("productionDomain", "http://app.example.com", "https origin"),
        ("logRetentionDays", 10, "[1, 3, 5, 7, 14"),
        ("templateVersion", "v1", "MAJOR.MINOR.PATCH"),
        ("platformAccountId", "12345", "12-digit"),
    ],
)
def test_invalid_value_names_the_key_and_the_allowed_values(
    key: str, value: Any, allowed: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(**{key: value})
    message = str(raised.value)
    assert message.startswith(f"{key}:")
    assert allowed in message


def test_missing_key_is_named() -> None:
    context = default_context()
    del context["maxTestMinutes"]
    with pytest.raises(ConfigError, match=r"^maxTestMinutes: missing"):
        PlatformConfig.from_context(context.get)


def test_invalid_config_fails_synth_with_the_key_in_the_message(tmp_path: Any) -> None:
    context = default_context() | {"testTaskArchitecture": "sparc"}
    env = os.environ | {"CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert (
        "Invalid configuration: testTaskArchitecture: 'sparc' is invalid; allowed: ARM64, X86_64"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
