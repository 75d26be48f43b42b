"""Typed settings: the only place that reads os.environ (lambda_src/CONTRACT.md "Environment").

The environment comes in small groups, each a frozen dataclass whose fields name their
variable. A function parses only the groups its wiring asks for (`load(Group)`, once
per execution environment), so each function's stack sets only its own variables:
HANDLER_ENVIRONMENT, derived from HANDLER_GROUPS, is what each handler reads.
A missing or bad variable raises SettingsError naming it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from agent_builder.validation import ACCOUNT_ID, ARCHITECTURES


class SettingsError(Exception):
    """The function's environment is incomplete or invalid: a deployment bug."""


Parser = Callable[[Mapping[str, str], str], Any]


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required")
    return value


def _integer(minimum: int, what: str) -> Parser:
    """An integer of at least `minimum`, described as `what` when it is not."""

    def parse(env: Mapping[str, str], name: str) -> int:
        raw = env.get(name, "")
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be {what}, got {raw!r}")
        return value

    return parse


def _text(env: Mapping[str, str], name: str) -> str:
    """Any text, empty included (a feature the owner left off): set, even if empty."""
    if name not in env:
        raise SettingsError(f"environment variable {name} is required (empty when off)")
    return env[name].strip()


_positive_int = _integer(1, "a positive integer")
# 0 included: a ceiling of 0 means none, and 0 free tests is a valid configuration.
_count = _integer(0, "a whole number")


def _listing(what: str) -> Parser:
    """A comma-separated list of at least one `what`."""

    def parse(env: Mapping[str, str], name: str) -> tuple[str, ...]:
        parts = tuple(part.strip() for part in _required(env, name).split(",") if part.strip())
        if not parts:
            raise SettingsError(f"{name} must list at least one {what}")
        return parts

    return parse


def _boolean(env: Mapping[str, str], name: str) -> bool:
    value = _required(env, name).lower()
    if value not in ("true", "false"):
        raise SettingsError(f"{name} must be 'true' or 'false', got {value!r}")
    return value == "true"


def _account_id(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name)
    if not ACCOUNT_ID.fullmatch(value):
        raise SettingsError(f"{name} must be a 12-digit account id, got {value!r}")
    return value


def _https_url(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name)
    if not value.startswith("https://"):
        raise SettingsError(f"{name} must be an https:// URL")
    return value


def _architecture(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name).upper()
    if value not in ARCHITECTURES:
        raise SettingsError(f"{name} must be {' or '.join(ARCHITECTURES)}, got {value!r}")
    return value


def _var(
    name: str, parse: Parser = _required, *, default: str | None = None, optional: bool = False
) -> Any:
    """A field read from environment variable `name`.

    `default`: the value when the variable is unset or empty (the stack still sets it).
    `optional`: not part of any function's contract (local mode only).
    """
    return field(metadata={"env": name, "parse": parse, "default": default, "optional": optional})


# ---- the groups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    project_name: str = _var("PROJECT_NAME")


@dataclass(frozen=True)
class RunStore:
    """Where runs and their charges are kept, and for how long."""

    runs_table: str = _var("RUNS_TABLE")
    usage_table: str = _var("USAGE_TABLE")
    profiles_table: str = _var("PROFILES_TABLE")
    run_retention_days: int = _var("RUN_RETENTION_DAYS", _positive_int)


@dataclass(frozen=True)
class PlatformCluster:
    """The platform's test cluster: its tasks' events and stops."""

    cluster_arn: str = _var("CLUSTER_ARN")


@dataclass(frozen=True)
class RunnerContainer:
    runner_container_name: str = _var("RUNNER_CONTAINER_NAME")


@dataclass(frozen=True)
class TimeLimitSchedules:
    schedule_group_name: str = _var("SCHEDULE_GROUP_NAME")


@dataclass(frozen=True)
class TimeLimit:
    max_test_minutes: int = _var("MAX_TEST_MINUTES", _positive_int)


@dataclass(frozen=True)
class PlatformLaunch:
    """What starting a test on the platform cluster needs, and where its output goes."""

    task_definition_arn: str = _var("TASK_DEFINITION_ARN")
    subnet_ids: tuple[str, ...] = _var("SUBNET_IDS", _listing("subnet"))
    security_group_id: str = _var("SECURITY_GROUP_ID")
    use_spot: bool = _var("USE_SPOT", _boolean)
    artifacts_bucket: str = _var("ARTIFACTS_BUCKET")
    scheduler_role_arn: str = _var("SCHEDULER_ROLE_ARN")
    log_group_name: str = _var("LOG_GROUP_NAME")
    log_stream_prefix: str = _var("LOG_STREAM_PREFIX")


@dataclass(frozen=True)
class ApiTables:
    agents_table: str = _var("AGENTS_TABLE")
    audit_table: str = _var("AUDIT_TABLE")


@dataclass(frozen=True)
class Limits:
    """What a user may do: tests a month, launches a minute, models and output tokens."""

    # 0 is a valid configuration (stacks/config.py allows it): no free tests at all.
    free_tests_per_month: int = _var("FREE_TESTS_PER_MONTH", _count)
    launches_per_minute: int = _var("LAUNCHES_PER_MINUTE", _positive_int)
    allowed_models: tuple[str, ...] = _var("ALLOWED_MODELS", _listing("model id"))
    max_output_tokens: int = _var("MAX_OUTPUT_TOKENS", _positive_int)


@dataclass(frozen=True)
class Ceilings:
    """The owner's: platform test tasks at once, platform free tests a month (0: none),
    agents per user (CONTRACT.md "Ceilings")."""

    max_concurrent_test_tasks: int = _var("MAX_CONCURRENT_TEST_TASKS", _positive_int)
    platform_free_tests_per_month: int = _var("PLATFORM_FREE_TESTS_PER_MONTH", _count)
    max_agents_per_user: int = _var("MAX_AGENTS_PER_USER", _positive_int)


@dataclass(frozen=True)
class ConnectedAccounts:
    """Tier 2: connecting customers' AWS accounts (the API and the registration function)."""

    accounts_table: str = _var("ACCOUNTS_TABLE")
    profiles_table: str = _var("PROFILES_TABLE")
    audit_table: str = _var("AUDIT_TABLE")
    platform_account_id: str = _var("PLATFORM_ACCOUNT_ID", _account_id)
    launcher_role_arn: str = _var("LAUNCHER_ROLE_ARN")
    customer_role_name: str = _var("CUSTOMER_ROLE_NAME")
    registration_topic_arn: str = _var("REGISTRATION_TOPIC_ARN")
    template_version: str = _var("TEMPLATE_VERSION")
    template_url: str = _var("TEMPLATE_URL", _https_url)


@dataclass(frozen=True)
class CustomerRunner:
    """Tier 2: the task each customer run registers in the customer's account. The
    defaults are the platform runner's (cdk.json testTask*)."""

    runner_image_uri: str = _var("RUNNER_IMAGE_URI")
    runner_architecture: str = _var("RUNNER_ARCHITECTURE", _architecture, default="ARM64")
    customer_task_cpu: int = _var("CUSTOMER_TASK_CPU", _positive_int, default="256")
    customer_task_memory_mib: int = _var("CUSTOMER_TASK_MEMORY_MIB", _positive_int, default="512")


@dataclass(frozen=True)
class EnterpriseSso:
    """Tier 3: the organisations' SAML IdPs in the user pool, their IAM Identity Center
    sessions (tokens encrypted with SSO_TOKEN_KEY_ARN), and where the SSO items live
    (repositories/sso.py: the usage table until the organisations table hosts them)."""

    user_pool_id: str = _var("USER_POOL_ID")
    user_pool_client_id: str = _var("USER_POOL_CLIENT_ID")
    # Empty when the owner leaves IAM Identity Center sessions off (enterpriseSso=false).
    sso_token_key_arn: str = _var("SSO_TOKEN_KEY_ARN", _text)
    sso_items_table: str = _var("USAGE_TABLE")
    # Local mode only: its metadata stand-ins listen on 127.0.0.1.
    saml_metadata_allow_private: bool = _var(
        "SAML_METADATA_ALLOW_PRIVATE", _boolean, default="false", optional=True
    )


@dataclass(frozen=True)
class OrganizationAccounts:
    """Tier 3: the organisation onboarding template (a StackSet of the customer template)."""

    organization_template_url: str = _var("ORGANIZATION_TEMPLATE_URL", _https_url)


def _domains(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated domain names; set but empty for none (the stack always sets it)."""
    if name not in env:
        raise SettingsError(f"environment variable {name} is required (empty for none)")
    return tuple(part.strip().lower() for part in env.get(name, "").split(",") if part.strip())


@dataclass(frozen=True)
class SignUp:
    """The sign-up triggers: where profiles go, and the owner's blocked domains (added to
    agent_builder/blocked_email_domains.txt; empty: only those)."""

    profiles_table: str = _var("PROFILES_TABLE")
    blocked_email_domains: tuple[str, ...] = _var("BLOCKED_EMAIL_DOMAINS", _domains)


def _web_url(env: Mapping[str, str], name: str) -> str:
    """An https URL without a trailing slash; plain http only on this machine (local mode)."""
    value = _required(env, name).rstrip("/")
    local = value.startswith(("http://127.0.0.1", "http://localhost"))
    if not (value.startswith("https://") or local):
        raise SettingsError(f"{name} must be an https:// URL")
    return value


@dataclass(frozen=True)
class OidcBridge:
    """GitHub sign-in through the OIDC bridge (agent_builder/oidc_bridge): its table and
    signing key, Cognito as its one client, GitHub's OAuth app (GitHub's URLs by default)."""

    bridge_table: str = _var("BRIDGE_TABLE")
    signing_key_arn: str = _var("BRIDGE_SIGNING_KEY_ARN")
    issuer: str = _var("BRIDGE_ISSUER", _web_url)
    client_id: str = _var("BRIDGE_CLIENT_ID")
    client_secret_arn: str = _var("BRIDGE_CLIENT_SECRET_ARN")
    redirect_uri: str = _var("BRIDGE_REDIRECT_URI", _web_url)
    github_client_id: str = _var("GITHUB_CLIENT_ID")
    github_client_secret_name: str = _var("GITHUB_CLIENT_SECRET_NAME")
    github_url: str = _var("GITHUB_URL", _web_url, default="https://github.com")
    github_api_url: str = _var("GITHUB_API_URL", _web_url, default="https://api.github.com")


@dataclass(frozen=True)
class Receipts:
    """What a finished platform run's receipt needs: the runner's result documents and
    the platform test task's size (cdk.json testTask*), priced by agent_builder/pricing.py."""

    artifacts_bucket: str = _var("ARTIFACTS_BUCKET")
    test_task_cpu: int = _var("TEST_TASK_CPU", _positive_int)
    test_task_memory_mib: int = _var("TEST_TASK_MEMORY_MIB", _positive_int)
    test_task_architecture: str = _var("TEST_TASK_ARCHITECTURE", _architecture)
    use_spot: bool = _var("USE_SPOT", _boolean)


@dataclass(frozen=True)
class BudgetSwitch:
    """The budget's kill switch: where the pause is kept and audited, the topic it is
    believed from, the budget it must name, and the owner's alarm topic."""

    usage_table: str = _var("USAGE_TABLE")
    audit_table: str = _var("AUDIT_TABLE")
    budget_topic_arn: str = _var("BUDGET_TOPIC_ARN")
    budget_name: str = _var("BUDGET_NAME")
    alarm_topic_arn: str = _var("ALARM_TOPIC_ARN")


@dataclass(frozen=True)
class Organizations:
    """Tier 3: organisations, their members and invitations; whether anyone may found one."""

    organizations_table: str = _var("ORGANIZATIONS_TABLE")
    profiles_table: str = _var("PROFILES_TABLE")
    accounts_table: str = _var("ACCOUNTS_TABLE")
    audit_table: str = _var("AUDIT_TABLE")
    allow_organization_creation: bool = _var("ALLOW_ORGANIZATION_CREATION", _boolean)


G = TypeVar("G")

# The groups each handler's wiring loads (agent_builder/wiring.py). Powertools reads
# POWERTOOLS_SERVICE_NAME itself; the Lambda runtime sets AWS_REGION.
HANDLER_GROUPS: dict[str, tuple[type, ...]] = {
    "handlers.api": (
        Project,
        RunStore,
        PlatformCluster,
        RunnerContainer,
        TimeLimitSchedules,
        TimeLimit,
        PlatformLaunch,
        ApiTables,
        Limits,
        Ceilings,
        ConnectedAccounts,
        CustomerRunner,
        Organizations,
        EnterpriseSso,
        OrganizationAccounts,
    ),
    # The /org routes: organisations, SSO and IAM Identity Center, organisation accounts.
    "handlers.org_api": (
        Project,
        Organizations,
        ConnectedAccounts,
        EnterpriseSso,
        OrganizationAccounts,
    ),
    "handlers.task_events": (
        RunStore,
        PlatformCluster,
        RunnerContainer,
        TimeLimitSchedules,
        Receipts,
    ),
    "handlers.sweeper": (PlatformCluster, TimeLimit),
    "handlers.registration": (Project, ConnectedAccounts),
    "handlers.sign_up": (SignUp,),
    "handlers.oidc_bridge": (OidcBridge,),
    "handlers.budget": (BudgetSwitch,),
}
POWERTOOLS = frozenset({"POWERTOOLS_SERVICE_NAME"})


def variables(group: type, *, optional: bool = False) -> frozenset[str]:
    """The environment variables a group reads (with `optional`, only the optional ones)."""
    return frozenset(
        item.metadata["env"]
        for item in dataclasses.fields(group)
        if item.metadata["optional"] == optional
    )


# What the stack must set on each function: exactly these, no more.
HANDLER_ENVIRONMENT: dict[str, frozenset[str]] = {
    handler: POWERTOOLS.union(*(variables(group) for group in groups))
    for handler, groups in HANDLER_GROUPS.items()
}


def parse(group: type[G], env: Mapping[str, str]) -> G:
    """One group from an environment mapping; SettingsError names the first bad variable."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(group):  # type: ignore[arg-type]
        name, default = item.metadata["env"], item.metadata["default"]
        source = env
        if default is not None and not env.get(name, "").strip():
            source = {name: default}
        values[item.name] = item.metadata["parse"](source, name)
    return group(**values)


def parse_handler(handler: str, env: Mapping[str, str]) -> list[Any]:
    """Every group a handler reads, parsed (what a check of a whole environment needs)."""
    return [parse(group, env) for group in HANDLER_GROUPS[handler]]


_loaded: dict[type, Any] = {}


def load(group: type[G]) -> G:
    """The group parsed from os.environ, once per execution environment."""
    if group not in _loaded:
        _loaded[group] = parse(group, os.environ)
    return cast(G, _loaded[group])


def aws_region() -> str | None:
    """The function's region (the Lambda runtime sets AWS_REGION)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def reset() -> None:
    """Forget what was parsed (tests change the environment between cases)."""
    _loaded.clear()
