"""Typed settings: the only place that reads os.environ (see lambda_src/CONTRACT.md)."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(Exception):
    """The function's environment is incomplete or invalid: a deployment bug."""


@dataclass(frozen=True)
class Settings:
    project_name: str
    region: str | None
    profiles_table: str
    agents_table: str
    runs_table: str
    usage_table: str
    audit_table: str
    cluster_arn: str
    task_definition_arn: str
    runner_container_name: str
    subnet_ids: tuple[str, ...]
    security_group_id: str
    use_spot: bool
    artifacts_bucket: str
    log_group_name: str
    log_stream_prefix: str
    free_tests_per_month: int
    max_test_minutes: int
    launches_per_minute: int
    allowed_models: tuple[str, ...]
    max_output_tokens: int
    schedule_group_name: str
    scheduler_role_arn: str
    run_retention_days: int


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _positive_int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise SettingsError(f"{name} must be a positive integer, got {raw!r}")
    return value


def parse_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; names the first missing or bad key."""

    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise SettingsError(f"environment variable {name} is required")
        return value

    use_spot = required("USE_SPOT").lower()
    if use_spot not in ("true", "false"):
        raise SettingsError(f"USE_SPOT must be 'true' or 'false', got {use_spot!r}")
    subnets = _csv(required("SUBNET_IDS"))
    models = _csv(required("ALLOWED_MODELS"))
    if not subnets:
        raise SettingsError("SUBNET_IDS must list at least one subnet")
    if not models:
        raise SettingsError("ALLOWED_MODELS must list at least one model id")
    return Settings(
        project_name=required("PROJECT_NAME"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        profiles_table=required("PROFILES_TABLE"),
        agents_table=required("AGENTS_TABLE"),
        runs_table=required("RUNS_TABLE"),
        usage_table=required("USAGE_TABLE"),
        audit_table=required("AUDIT_TABLE"),
        cluster_arn=required("CLUSTER_ARN"),
        task_definition_arn=required("TASK_DEFINITION_ARN"),
        runner_container_name=required("RUNNER_CONTAINER_NAME"),
        subnet_ids=subnets,
        security_group_id=required("SECURITY_GROUP_ID"),
        use_spot=use_spot == "true",
        artifacts_bucket=required("ARTIFACTS_BUCKET"),
        log_group_name=required("LOG_GROUP_NAME"),
        log_stream_prefix=required("LOG_STREAM_PREFIX"),
        free_tests_per_month=_positive_int(env, "FREE_TESTS_PER_MONTH"),
        max_test_minutes=_positive_int(env, "MAX_TEST_MINUTES"),
        launches_per_minute=_positive_int(env, "LAUNCHES_PER_MINUTE"),
        allowed_models=models,
        max_output_tokens=_positive_int(env, "MAX_OUTPUT_TOKENS"),
        schedule_group_name=required("SCHEDULE_GROUP_NAME"),
        scheduler_role_arn=required("SCHEDULER_ROLE_ARN"),
        run_retention_days=_positive_int(env, "RUN_RETENTION_DAYS"),
    )


@functools.cache
def get_settings() -> Settings:
    """Parsed once per execution environment; tests call get_settings.cache_clear()."""
    return parse_settings(os.environ)


@dataclass(frozen=True)
class AccountSettings:
    """Tier 2: connecting customers' AWS accounts and deploying into them.

    A group of its own, parsed on first use: the API needs it for /aws-account and
    customer deployments, the registration function for everything; the task-events and
    sweeper functions never touch a customer account and do not depend on it.
    """

    accounts_table: str
    platform_account_id: str
    launcher_role_arn: str
    customer_role_name: str
    registration_topic_arn: str
    template_version: str
    template_url: str
    runner_image_uri: str
    runner_architecture: str
    customer_task_cpu: int
    customer_task_memory_mib: int
    local_response_url_prefix: str | None = None


ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ARCHITECTURES = ("ARM64", "X86_64")
LOOPBACK_PREFIXES = ("http://127.0.0.1:", "http://localhost:")
# Optional, with the platform runner's defaults (cdk.json testTask*): the stack may set
# them from its config so customer tasks match the runner image's architecture.
RUNNER_DEFAULTS = {
    "RUNNER_ARCHITECTURE": "ARM64",
    "CUSTOMER_TASK_CPU": "256",
    "CUSTOMER_TASK_MEMORY_MIB": "512",
}


def parse_account_settings(env: Mapping[str, str]) -> AccountSettings:
    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise SettingsError(f"environment variable {name} is required")
        return value

    defaults = {name: env.get(name, "").strip() or value for name, value in RUNNER_DEFAULTS.items()}
    platform_account = required("PLATFORM_ACCOUNT_ID")
    if not ACCOUNT_ID.match(platform_account):
        raise SettingsError(
            f"PLATFORM_ACCOUNT_ID must be a 12-digit account id, got {platform_account!r}"
        )
    template_url = required("TEMPLATE_URL")
    if not template_url.startswith("https://"):
        raise SettingsError("TEMPLATE_URL must be an https:// URL")
    architecture = defaults["RUNNER_ARCHITECTURE"].upper()
    if architecture not in ARCHITECTURES:
        raise SettingsError(f"RUNNER_ARCHITECTURE must be ARM64 or X86_64, got {architecture!r}")
    local_prefix = env.get("LOCAL_RESPONSE_URL_PREFIX", "").strip() or None
    if local_prefix and not local_prefix.startswith(LOOPBACK_PREFIXES):
        raise SettingsError(
            "LOCAL_RESPONSE_URL_PREFIX (local mode only) must start with http://127.0.0.1: "
            "or http://localhost:"
        )
    return AccountSettings(
        accounts_table=required("ACCOUNTS_TABLE"),
        platform_account_id=platform_account,
        launcher_role_arn=required("LAUNCHER_ROLE_ARN"),
        customer_role_name=required("CUSTOMER_ROLE_NAME"),
        registration_topic_arn=required("REGISTRATION_TOPIC_ARN"),
        template_version=required("TEMPLATE_VERSION"),
        template_url=template_url,
        runner_image_uri=required("RUNNER_IMAGE_URI"),
        runner_architecture=architecture,
        customer_task_cpu=_positive_int(defaults, "CUSTOMER_TASK_CPU"),
        customer_task_memory_mib=_positive_int(defaults, "CUSTOMER_TASK_MEMORY_MIB"),
        local_response_url_prefix=local_prefix,
    )


@functools.cache
def get_account_settings() -> AccountSettings:
    return parse_account_settings(os.environ)
