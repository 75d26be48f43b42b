"""The platform's configuration: cdk.json context, parsed and validated once.

app.py calls `PlatformConfig.from_context(app.node.try_get_context)`; stacks and
constructs receive the frozen result and never read context or the environment.
Values given with `-c key=value` arrive as strings, so every parser accepts both the
JSON type from cdk.json and its string spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_cdk import RemovalPolicy
    from aws_cdk.aws_logs import RetentionDays

# Fargate's valid CPU units -> allowed memory (MiB).
FARGATE_SIZES: Mapping[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
}
ARCHITECTURES = ("ARM64", "X86_64")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)

_PROJECT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*\.[a-z0-9][a-zA-Z0-9.:_-]*$")
_ORIGIN = re.compile(
    r"^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d+)?$"
)
_LOCAL_ORIGIN = re.compile(r"^http://(localhost|127\.0\.0\.1)(:\d+)?$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# Sign-in (issue 11): OAuth client ids, Secrets Manager secret names, mail domains.
_GOOGLE_CLIENT_ID = re.compile(r"^[0-9A-Za-z-]+\.apps\.googleusercontent\.com$")
_OAUTH_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_MAIL_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class PlatformConfig:
    project_name: str
    alarm_email: str | None
    monthly_budget_usd: int
    free_tests_per_month: int
    max_test_minutes: int
    max_concurrent_test_tasks: int
    platform_free_tests_per_month: int
    max_agents_per_user: int
    launches_per_minute: int
    test_task_cpu: int
    test_task_memory_mib: int
    test_task_architecture: str
    test_task_use_spot: bool
    allowed_models: tuple[str, ...]
    max_output_tokens: int
    log_retention_days: int
    run_retention_days: int
    retain_data: bool
    production_domain: str
    template_version: str
    platform_account_id: str | None
    allow_organization_creation: bool
    enterprise_sso: bool
    google_client_id: str | None
    google_client_secret_name: str | None
    blocked_email_domains: tuple[str, ...]
    # GitHub sign-in through the OIDC bridge: both or neither (None: no bridge, no IdP).
    github_client_id: str | None = None
    github_client_secret_name: str | None = None

    @property
    def prefix(self) -> str:
        """The resource-name prefix (`projectName`)."""
        return self.project_name

    # aws_cdk is imported inside these two properties: whatever only reads cdk.json (the
    # exporters, local mode, test fixtures) should not pay for loading the CDK.

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What stateful resources do on `cdk destroy`: kept with `retainData`, else deleted."""
        from aws_cdk import RemovalPolicy

        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> RetentionDays:
        """`logRetentionDays` as CDK's enum (whose members are in CloudWatch's order)."""
        from aws_cdk.aws_logs import RetentionDays

        members = list(RetentionDays)[: len(LOG_RETENTION_DAYS)]
        return members[LOG_RETENTION_DAYS.index(self.log_retention_days)]

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> PlatformConfig:
        """Build from a context getter (`app.node.try_get_context`); raise ConfigError."""
        cpu = _int(get, "testTaskCpu", minimum=256, maximum=4096)
        if cpu not in FARGATE_SIZES:
            raise ConfigError(
                f"testTaskCpu: {cpu} is not a Fargate size; allowed: {sorted(FARGATE_SIZES)}"
            )
        memory = _int(get, "testTaskMemoryMiB", minimum=512, maximum=30720)
        if memory not in FARGATE_SIZES[cpu]:
            raise ConfigError(
                f"testTaskMemoryMiB: {memory} is not valid with testTaskCpu={cpu}; "
                f"allowed: {list(FARGATE_SIZES[cpu])}"
            )
        retention = _int(get, "logRetentionDays", minimum=1, maximum=1096)
        if retention not in LOG_RETENTION_DAYS:
            raise ConfigError(
                f"logRetentionDays: {retention} is not a CloudWatch retention; allowed: {list(LOG_RETENTION_DAYS)}"
            )
        github_client_id, github_client_secret_name = _pair(
            get,
            ("githubClientId", _OAUTH_CLIENT_ID, "the GitHub OAuth app's client id, or empty"),
            ("githubClientSecretName", _SECRET_NAME, "a Secrets Manager secret name, or empty"),
        )
        return cls(
            github_client_id=github_client_id,
            github_client_secret_name=github_client_secret_name,
            project_name=_str(
                get,
                "projectName",
                _PROJECT_NAME,
                "lowercase letters, digits and hyphens, starting with a letter, at most 20 characters",
            ),
            alarm_email=_optional_str(
                get, "alarmEmail", _EMAIL, "an e-mail address, or empty for none"
            ),
            monthly_budget_usd=_int(get, "monthlyBudgetUsd", minimum=1, maximum=1_000_000),
            free_tests_per_month=_int(get, "freeTestsPerMonth", minimum=0, maximum=10_000),
            max_test_minutes=_int(get, "maxTestMinutes", minimum=1, maximum=60),
            max_concurrent_test_tasks=_int(get, "maxConcurrentTestTasks", minimum=1, maximum=1000),
            platform_free_tests_per_month=_int(
                get, "platformFreeTestsPerMonth", minimum=0, maximum=10_000_000
            ),
            max_agents_per_user=_int(get, "maxAgentsPerUser", minimum=1, maximum=10_000),
            launches_per_minute=_int(get, "launchesPerMinute", minimum=1, maximum=600),
            test_task_cpu=cpu,
            test_task_memory_mib=memory,
            test_task_architecture=_choice(get, "testTaskArchitecture", ARCHITECTURES),
            test_task_use_spot=_bool(get, "testTaskUseSpot"),
            allowed_models=_models(get, "allowedModels"),
            max_output_tokens=_int(get, "maxOutputTokens", minimum=1, maximum=64_000),
            log_retention_days=retention,
            run_retention_days=_int(get, "runRetentionDays", minimum=1, maximum=3650),
            retain_data=_bool(get, "retainData"),
            production_domain=_origin(get, "productionDomain"),
            template_version=_str(
                get, "templateVersion", _SEMVER, "a version MAJOR.MINOR.PATCH, e.g. 1.0.0"
            ),
            platform_account_id=_optional_str(
                get, "platformAccountId", _ACCOUNT_ID, "a 12-digit AWS account id, or empty"
            ),
            **_google(get),
            blocked_email_domains=_domains(get, "blockedEmailDomains"),
            allow_organization_creation=_bool(get, "allowOrganizationCreation"),
            enterprise_sso=_bool(get, "enterpriseSso"),
        )

    def as_context(self) -> dict[str, Any]:
        """The cdk.json spelling of this config (for tests and derived apps)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            key = _CONTEXT_KEYS[f.name]
            value = getattr(self, f.name)
            out[key] = list(value) if isinstance(value, tuple) else ("" if value is None else value)
        return out


_CONTEXT_KEYS = {
    "project_name": "projectName",
    "alarm_email": "alarmEmail",
    "monthly_budget_usd": "monthlyBudgetUsd",
    "free_tests_per_month": "freeTestsPerMonth",
    "max_test_minutes": "maxTestMinutes",
    "max_concurrent_test_tasks": "maxConcurrentTestTasks",
    "platform_free_tests_per_month": "platformFreeTestsPerMonth",
    "max_agents_per_user": "maxAgentsPerUser",
    "launches_per_minute": "launchesPerMinute",
    "test_task_cpu": "testTaskCpu",
    "test_task_memory_mib": "testTaskMemoryMiB",
    "test_task_architecture": "testTaskArchitecture",
    "test_task_use_spot": "testTaskUseSpot",
    "allowed_models": "allowedModels",
    "max_output_tokens": "maxOutputTokens",
    "log_retention_days": "logRetentionDays",
    "run_retention_days": "runRetentionDays",
    "retain_data": "retainData",
    "production_domain": "productionDomain",
    "template_version": "templateVersion",
    "platform_account_id": "platformAccountId",
    "google_client_id": "googleClientId",
    "google_client_secret_name": "googleClientSecretName",
    "blocked_email_domains": "blockedEmailDomains",
    "github_client_id": "githubClientId",
    "github_client_secret_name": "githubClientSecretName",
    "allow_organization_creation": "allowOrganizationCreation",
    "enterprise_sso": "enterpriseSso",
}
CONTEXT_KEYS: tuple[str, ...] = tuple(_CONTEXT_KEYS.values())


def _required(get: Callable[[str], Any], key: str) -> Any:
    value = get(key)
    if value is None:
        raise ConfigError(f"{key}: missing from cdk.json context")
    return value


def _str(get: Callable[[str], Any], key: str, pattern: re.Pattern[str], allowed: str) -> str:
    value = _required(get, key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{key}: {value!r} is invalid; allowed: {allowed}")
    return value


def _optional_str(
    get: Callable[[str], Any], key: str, pattern: re.Pattern[str], allowed: str
) -> str | None:
    value = get(key)
    if value is None or value == "":
        return None
    return _str(get, key, pattern, allowed)


def _pair(
    get: Callable[[str], Any],
    first: tuple[str, re.Pattern[str], str],
    second: tuple[str, re.Pattern[str], str],
) -> tuple[str | None, str | None]:
    """Two optional values that make sense only together (an OAuth app's id and secret)."""
    a, b = _optional_str(get, *first), _optional_str(get, *second)
    if (a is None) != (b is None):
        given, missing = (first[0], second[0]) if a is not None else (second[0], first[0])
        raise ConfigError(f"{missing}: required when {given} is set (set both, or neither)")
    return a, b


def _int(get: Callable[[str], Any], key: str, *, minimum: int, maximum: int) -> int:
    raw = _required(get, key)
    if isinstance(raw, bool):
        raise ConfigError(f"{key}: {raw!r} is not a whole number; allowed: {minimum}..{maximum}")
    try:
        value = int(raw) if isinstance(raw, int) else int(str(raw).strip(), 10)
    except ValueError:
        raise ConfigError(
            f"{key}: {raw!r} is not a whole number; allowed: {minimum}..{maximum}"
        ) from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key}: {value} is out of range; allowed: {minimum}..{maximum}")
    return value


def _bool(get: Callable[[str], Any], key: str) -> bool:
    raw = _required(get, key)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ConfigError(f"{key}: {raw!r} is invalid; allowed: true, false")


def _choice(get: Callable[[str], Any], key: str, choices: tuple[str, ...]) -> str:
    raw = _required(get, key)
    if raw not in choices:
        raise ConfigError(f"{key}: {raw!r} is invalid; allowed: {', '.join(choices)}")
    return str(raw)


def _models(get: Callable[[str], Any], key: str) -> tuple[str, ...]:
    raw = _required(get, key)
    if isinstance(raw, str):
        # `-c allowedModels=a,b` or a JSON list in a string
        try:
            raw = (
                json.loads(raw)
                if raw.lstrip().startswith("[")
                else [m.strip() for m in raw.split(",")]
            )
        except json.JSONDecodeError:
            raise ConfigError(
                f"{key}: {raw!r} is not a JSON list or comma-separated list of Bedrock model ids"
            ) from None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{key}: must be a non-empty list of Bedrock model ids")
    bad = [m for m in raw if not isinstance(m, str) or not _MODEL_ID.fullmatch(m)]
    if bad:
        raise ConfigError(
            f"{key}: {bad!r} are not Bedrock model ids (like 'amazon.nova-micro-v1:0')"
        )
    if len(set(raw)) != len(raw):
        raise ConfigError(f"{key}: lists a model twice")
    return tuple(raw)


def _origin(get: Callable[[str], Any], key: str) -> str:
    """An origin, or "" for none (the console is then at its distribution's domain)."""
    raw = _required(get, key)
    if raw == "":
        return ""
    if not isinstance(raw, str) or not (_ORIGIN.fullmatch(raw) or _LOCAL_ORIGIN.fullmatch(raw)):
        raise ConfigError(
            f"{key}: {raw!r} is invalid; allowed: an https origin without path "
            "(https://app.example.com), http://localhost[:port], or empty for the console's "
            "CloudFront domain"
        )
    return raw


def _google(get: Callable[[str], Any]) -> dict[str, str | None]:
    """Google sign-in: `googleClientId` and `googleClientSecretName` both set, or neither."""
    client_id = _optional_str(
        get,
        "googleClientId",
        _GOOGLE_CLIENT_ID,
        "a Google OAuth client id (<number>-<id>.apps.googleusercontent.com), or empty",
    )
    secret_name = _optional_str(
        get,
        "googleClientSecretName",
        _SECRET_NAME,
        "the name of a Secrets Manager secret holding the client secret, or empty",
    )
    if (client_id is None) != (secret_name is None):
        missing = "googleClientSecretName" if secret_name is None else "googleClientId"
        raise ConfigError(
            f"{missing}: missing; googleClientId and googleClientSecretName are set together "
            "(both for Google sign-in, neither without it)"
        )
    return {"google_client_id": client_id, "google_client_secret_name": secret_name}


def _domains(get: Callable[[str], Any], key: str) -> tuple[str, ...]:
    """A list of mail domains (JSON list, or comma-separated with -c); may be empty."""
    raw = get(key)
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.lstrip().startswith("[") else raw.split(",")
        except json.JSONDecodeError:
            raise ConfigError(
                f"{key}: {raw!r} is not a JSON list or comma-separated list"
            ) from None
    if not isinstance(raw, list):
        raise ConfigError(f"{key}: must be a list of mail domains (like 'mailinator.com')")
    domains = [d.strip().lower() for d in raw if isinstance(d, str) and d.strip()]
    bad = [d for d in raw if not isinstance(d, str)] + [
        d for d in domains if not _MAIL_DOMAIN.fullmatch(d)
    ]
    if bad:
        raise ConfigError(f"{key}: {bad!r} are not mail domains (like 'mailinator.com')")
    return tuple(dict.fromkeys(domains))
