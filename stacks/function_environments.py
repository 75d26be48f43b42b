"""Which environment variables each control-plane function gets: what its handler reads.

The other half of this contract is lambda_src/agent_builder/settings.py, which parses
each function's group; lambda_src/CONTRACT.md describes the variables. A function gets
exactly its names here, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping

_TIER2 = (
    "PLATFORM_ACCOUNT_ID",
    "LAUNCHER_ROLE_ARN",
    "CUSTOMER_ROLE_NAME",
    "REGISTRATION_TOPIC_ARN",
    "TEMPLATE_VERSION",
    "TEMPLATE_URL",
)

_SIGN_UP = (
    "POWERTOOLS_SERVICE_NAME",
    "PROFILES_TABLE",
    "BLOCKED_EMAIL_DOMAINS",
    "ORGANIZATIONS_TABLE",
    "AUDIT_TABLE",
)

ENVIRONMENT_NAMES: Mapping[str, tuple[str, ...]] = {
    # handlers.api: everything the HTTP API does, Tier 2 connections and deployments too.
    "Api": (
        "POWERTOOLS_SERVICE_NAME",
        "PROJECT_NAME",
        "PROFILES_TABLE",
        "AGENTS_TABLE",
        "RUNS_TABLE",
        "USAGE_TABLE",
        "AUDIT_TABLE",
        "ACCOUNTS_TABLE",
        "CLUSTER_ARN",
        "TASK_DEFINITION_ARN",
        "RUNNER_CONTAINER_NAME",
        "SUBNET_IDS",
        "SECURITY_GROUP_ID",
        "USE_SPOT",
        "ARTIFACTS_BUCKET",
        "LOG_GROUP_NAME",
        "LOG_STREAM_PREFIX",
        "FREE_TESTS_PER_MONTH",
        "MAX_TEST_MINUTES",
        "LAUNCHES_PER_MINUTE",
        "ALLOWED_MODELS",
        "MAX_OUTPUT_TOKENS",
        "MAX_CONCURRENT_TEST_TASKS",
        "PLATFORM_FREE_TESTS_PER_MONTH",
        "MAX_AGENTS_PER_USER",
        "SCHEDULE_GROUP_NAME",
        "SCHEDULER_ROLE_ARN",
        "RUN_RETENTION_DAYS",
        *_TIER2,
        "RUNNER_IMAGE_URI",
        "RUNNER_ARCHITECTURE",
        "CUSTOMER_TASK_CPU",
        "CUSTOMER_TASK_MEMORY_MIB",
        # Tier 3: organisations.
        "ORGANIZATIONS_TABLE",
        "ALLOW_ORGANIZATION_CREATION",
        # Tier 3: organisations' SAML IdPs, IAM Identity Center sessions, their accounts.
        "USER_POOL_ID",
        "USER_POOL_CLIENT_ID",
        "SSO_TOKEN_KEY_ARN",
        "ORGANIZATION_TEMPLATE_URL",
    ),
    # handlers.org_api: the /org routes (organisations, members, SSO, organisation accounts).
    "OrgApi": (
        "POWERTOOLS_SERVICE_NAME",
        "PROJECT_NAME",
        "ORGANIZATIONS_TABLE",
        "PROFILES_TABLE",
        "ACCOUNTS_TABLE",
        "AUDIT_TABLE",
        "ALLOW_ORGANIZATION_CREATION",
        *_TIER2,
        "USER_POOL_ID",
        "USER_POOL_CLIENT_ID",
        "SSO_TOKEN_KEY_ARN",
        "ORGANIZATION_TEMPLATE_URL",
    ),
    # handlers.task_events: runs and usage follow ECS task state; the stop schedule goes.
    "TaskEvents": (
        "POWERTOOLS_SERVICE_NAME",
        "RUNS_TABLE",
        "USAGE_TABLE",
        "PROFILES_TABLE",
        "CLUSTER_ARN",
        "RUNNER_CONTAINER_NAME",
        "SCHEDULE_GROUP_NAME",
        "RUN_RETENTION_DAYS",
        # The receipt: the runner's result.json, and the task size it is priced at.
        "ARTIFACTS_BUCKET",
        "TEST_TASK_CPU",
        "TEST_TASK_MEMORY_MIB",
        "TEST_TASK_ARCHITECTURE",
        "USE_SPOT",
    ),
    # handlers.sweeper: ECS only, the backstop of the time limit.
    "Sweeper": ("POWERTOOLS_SERVICE_NAME", "CLUSTER_ARN", "MAX_TEST_MINUTES"),
    # handlers.budget: the budget's kill switch pauses the free tier, audited and alarmed.
    "BudgetSwitch": (
        "POWERTOOLS_SERVICE_NAME",
        "USAGE_TABLE",
        "AUDIT_TABLE",
        "BUDGET_TOPIC_ARN",
        "BUDGET_NAME",
        "ALARM_TOPIC_ARN",
    ),
    # handlers.registration: customers' onboarding stacks connecting and disconnecting.
    "Registration": (
        "POWERTOOLS_SERVICE_NAME",
        "PROJECT_NAME",
        "PROFILES_TABLE",
        "ACCOUNTS_TABLE",
        "AUDIT_TABLE",
        *_TIER2,
    ),
    # handlers.sign_up: the user pool's pre sign-up and post confirmation triggers (an
    # SSO sign-up's membership: the organisations table and its `member.join` record).
    "PreSignUp": _SIGN_UP,
    "PostConfirmation": _SIGN_UP,
}


def environments(values: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Each function's variables, out of `values`, which must hold exactly the names above.

    A missing value or one that no function reads fails synth, naming it.
    """
    wanted = {name for names in ENVIRONMENT_NAMES.values() for name in names}
    if set(values) != wanted:
        raise ValueError(
            f"environment values missing {sorted(wanted - set(values))}, "
            f"unused {sorted(set(values) - wanted)}"
        )
    return {
        function: {name: values[name] for name in names}
        for function, names in ENVIRONMENT_NAMES.items()
    }


__all__ = ["ENVIRONMENT_NAMES", "environments"]
