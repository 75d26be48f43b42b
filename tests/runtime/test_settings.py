"""Settings parsed once from the environment, per function; one client factory honouring
boto3's own env."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_builder import clients, settings, wiring
from agent_builder.settings import HANDLER_ENVIRONMENT, SettingsError, parse, parse_handler
from tests.runtime.support import (
    AGENT,
    ApiCall,
    Platform,
    api_handler,
    http_event,
    lambda_context,
    task_event,
)

# The per-function contract (lambda_src/CONTRACT.md "Environment"), written out here on
# purpose: HANDLER_ENVIRONMENT is derived from the settings groups and must equal it.
CONTRACT = {
    "handlers.oidc_bridge": {
        "POWERTOOLS_SERVICE_NAME",
        "BRIDGE_TABLE",
        "BRIDGE_SIGNING_KEY_ARN",
        "BRIDGE_ISSUER",
        "BRIDGE_CLIENT_ID",
        "BRIDGE_CLIENT_SECRET_ARN",
        "BRIDGE_REDIRECT_URI",
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET_NAME",
        "GITHUB_URL",
        "GITHUB_API_URL",
    },
    "handlers.api": {
        "POWERTOOLS_SERVICE_NAME",
        "PROJECT_NAME",
        "PROFILES_TABLE",
        "AGENTS_TABLE",
        "RUNS_TABLE",
        "USAGE_TABLE",
        "AUDIT_TABLE",
        "ACCOUNTS_TABLE",
        "USER_POOL_ID",
        "USER_POOL_CLIENT_ID",
        "SSO_TOKEN_KEY_ARN",
        "ORGANIZATION_TEMPLATE_URL",
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
        "PLATFORM_ACCOUNT_ID",
        "LAUNCHER_ROLE_ARN",
        "CUSTOMER_ROLE_NAME",
        "REGISTRATION_TOPIC_ARN",
        "TEMPLATE_VERSION",
        "TEMPLATE_URL",
        "RUNNER_IMAGE_URI",
        "ORGANIZATIONS_TABLE",
        "ALLOW_ORGANIZATION_CREATION",
        "RUNNER_ARCHITECTURE",
        "CUSTOMER_TASK_CPU",
        "CUSTOMER_TASK_MEMORY_MIB",
    },
    # The /org function: no runs, no clusters, no launches.
    "handlers.org_api": {
        "POWERTOOLS_SERVICE_NAME",
        "PROJECT_NAME",
        "ORGANIZATIONS_TABLE",
        "PROFILES_TABLE",
        "ACCOUNTS_TABLE",
        "AUDIT_TABLE",
        "ALLOW_ORGANIZATION_CREATION",
        "PLATFORM_ACCOUNT_ID",
        "LAUNCHER_ROLE_ARN",
        "CUSTOMER_ROLE_NAME",
        "REGISTRATION_TOPIC_ARN",
        "TEMPLATE_VERSION",
        "TEMPLATE_URL",
        "USER_POOL_ID",
        "USER_POOL_CLIENT_ID",
        "SSO_TOKEN_KEY_ARN",
        "USAGE_TABLE",
        "ORGANIZATION_TEMPLATE_URL",
    },
    "handlers.task_events": {
        "POWERTOOLS_SERVICE_NAME",
        "RUNS_TABLE",
        "USAGE_TABLE",
        "PROFILES_TABLE",
        "CLUSTER_ARN",
        "RUNNER_CONTAINER_NAME",
        "SCHEDULE_GROUP_NAME",
        "RUN_RETENTION_DAYS",
        "ARTIFACTS_BUCKET",
        "TEST_TASK_CPU",
        "TEST_TASK_MEMORY_MIB",
        "TEST_TASK_ARCHITECTURE",
        "USE_SPOT",
    },
    "handlers.sweeper": {"POWERTOOLS_SERVICE_NAME", "CLUSTER_ARN", "MAX_TEST_MINUTES"},
    "handlers.registration": {
        "POWERTOOLS_SERVICE_NAME",
        "PROJECT_NAME",
        "PROFILES_TABLE",
        "ACCOUNTS_TABLE",
        "AUDIT_TABLE",
        "PLATFORM_ACCOUNT_ID",
        "LAUNCHER_ROLE_ARN",
        "CUSTOMER_ROLE_NAME",
        "REGISTRATION_TOPIC_ARN",
        "TEMPLATE_VERSION",
        "TEMPLATE_URL",
    },
    "handlers.sign_up": {"POWERTOOLS_SERVICE_NAME", "PROFILES_TABLE", "BLOCKED_EMAIL_DOMAINS"},
    "handlers.budget": {
        "POWERTOOLS_SERVICE_NAME",
        "USAGE_TABLE",
        "AUDIT_TABLE",
        "BUDGET_TOPIC_ARN",
        "BUDGET_NAME",
        "ALARM_TOPIC_ARN",
    },
}
EVERY_VARIABLE = set().union(*CONTRACT.values())
# Read with a default when unset (the stack sets them from its config all the same).
DEFAULTED = {
    "RUNNER_ARCHITECTURE": "ARM64",
    "CUSTOMER_TASK_CPU": "256",
    "CUSTOMER_TASK_MEMORY_MIB": "512",
    "GITHUB_URL": "https://github.com",
    "GITHUB_API_URL": "https://api.github.com",
}
# The GitHub OIDC bridge's variables (its function is in the Identity stack, not `platform`).
BRIDGE_ENV = {
    "BRIDGE_TABLE": "bridge-grants",
    "BRIDGE_SIGNING_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/k",
    "BRIDGE_ISSUER": "https://bridge.example.com",
    "BRIDGE_CLIENT_ID": "agent-builder-cognito",
    "BRIDGE_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
    "BRIDGE_REDIRECT_URI": "https://x.auth.us-east-1.amazoncognito.com/oauth2/idpresponse",
    "GITHUB_CLIENT_ID": "Iv1.abc",
    "GITHUB_CLIENT_SECRET_NAME": "agent-builder/github-oauth",
}


def test_settings_parse_the_contract_environment(platform: Platform) -> None:
    launch = settings.load(settings.PlatformLaunch)

    assert launch.use_spot is True
    assert launch.subnet_ids == (platform.subnet_id,)
    assert settings.load(settings.Limits).free_tests_per_month == 3
    assert settings.aws_region() == "us-east-1"


def test_zero_free_tests_and_no_platform_ceiling_are_valid_settings(platform: Platform) -> None:
    """stacks/config.py allows freeTestsPerMonth=0 and platformFreeTestsPerMonth=0."""
    env = {**platform.env, "FREE_TESTS_PER_MONTH": "0", "PLATFORM_FREE_TESTS_PER_MONTH": "0"}
    parse_handler("handlers.api", env)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RUNS_TABLE", "", "RUNS_TABLE is required"),
        ("USE_SPOT", "yes", "USE_SPOT must be"),
        ("FREE_TESTS_PER_MONTH", "ten", "FREE_TESTS_PER_MONTH must be a whole number"),
        ("FREE_TESTS_PER_MONTH", "-1", "FREE_TESTS_PER_MONTH must be a whole number"),
        ("PLATFORM_FREE_TESTS_PER_MONTH", "lots", "PLATFORM_FREE_TESTS_PER_MONTH must be a whole"),
        ("MAX_CONCURRENT_TEST_TASKS", "0", "MAX_CONCURRENT_TEST_TASKS must be a positive integer"),
        ("MAX_AGENTS_PER_USER", "", "MAX_AGENTS_PER_USER must be a positive integer"),
        ("MAX_TEST_MINUTES", "0", "MAX_TEST_MINUTES must be a positive integer"),
        ("ALLOWED_MODELS", " , ", "ALLOWED_MODELS must list"),
        ("PLATFORM_ACCOUNT_ID", "12345", "PLATFORM_ACCOUNT_ID must be a 12-digit account id"),
        ("TEMPLATE_URL", "http://example.com/t.yaml", "TEMPLATE_URL must be an https:// URL"),
        ("ORGANIZATION_TEMPLATE_URL", "ftp://x", "ORGANIZATION_TEMPLATE_URL must be an https://"),
        ("RUNNER_ARCHITECTURE", "sparc", "RUNNER_ARCHITECTURE must be ARM64 or X86_64"),
        ("ALLOW_ORGANIZATION_CREATION", "maybe", "ALLOW_ORGANIZATION_CREATION must be"),
    ],
)
def test_bad_environment_names_the_variable(
    platform: Platform, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_handler("handlers.api", {**platform.env, name: value})


@pytest.mark.parametrize("handler", ["handlers.api", "handlers.org_api"])
def test_an_empty_sso_token_key_means_sessions_are_off_not_a_broken_function(
    platform: Platform, handler: str
) -> None:
    # enterpriseSso=false: the stack sets SSO_TOKEN_KEY_ARN empty (no $1/month key); the
    # rest of Tier 3 works, and the device flow answers 409 SSO_NOT_CONFIGURED.
    parsed = parse(settings.EnterpriseSso, {**platform.env, "SSO_TOKEN_KEY_ARN": " "})

    assert parsed.sso_token_key_arn == ""
    parse_handler(handler, {**platform.env, "SSO_TOKEN_KEY_ARN": ""})


def test_each_handler_reads_exactly_its_contract_variables() -> None:
    assert {handler: set(names) for handler, names in HANDLER_ENVIRONMENT.items()} == CONTRACT


@pytest.mark.parametrize(
    ("handler", "name"),
    sorted(
        (handler, name)
        for handler, names in CONTRACT.items()
        for name in names - {"POWERTOOLS_SERVICE_NAME", *DEFAULTED}
    ),
)
def test_each_contract_variable_is_required_by_its_handler(
    platform: Platform, handler: str, name: str
) -> None:
    env = {key: value for key, value in {**BRIDGE_ENV, **platform.env}.items() if key != name}

    with pytest.raises(SettingsError, match=name):
        parse_handler(handler, env)


def only_the_contract_of(handler: str, platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's environment as its stack sets it: its own variables, nothing else."""
    for name in EVERY_VARIABLE:
        monkeypatch.delenv(name, raising=False)
    for name in CONTRACT[handler]:
        monkeypatch.setenv(name, platform.env.get(name) or DEFAULTED[name])
    wiring.reset(keep_clients=True)


def call_api(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    answer = api_handler(path)(http_event(method, path, body=body), lambda_context())
    return answer["statusCode"], json.loads(answer.get("body") or "null")


def test_the_api_starts_with_only_its_contract_variables(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_the_contract_of("handlers.api", platform, monkeypatch)

    status, agent = call_api("POST", "/agents", AGENT)
    assert status == 201, agent
    status, run = call_api("POST", f"/agents/{agent['agentId']}/tests", {"input": "Hello"})
    assert status == 202, run
    assert call_api("GET", f"/runs/{run['runId']}/logs")[0] == 200
    assert call_api("GET", "/me")[0] == 200
    # Tier 2 (its settings groups are parsed on the first Tier 2 request).
    status, onboarding = call_api("POST", "/aws-account/onboarding")
    assert status == 200, onboarding
    status, refused = call_api(
        "POST", f"/agents/{agent['agentId']}/deployments", {"input": "Hello"}
    )
    assert status == 202, refused  # freemium: a test on the platform


def test_the_org_api_starts_with_only_its_contract_variables(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_the_contract_of("handlers.org_api", platform, monkeypatch)

    status, organization = call_api("POST", "/org", {"name": "Acme"})
    assert status == 201, organization
    assert call_api("GET", "/org")[0] == 200
    assert call_api("GET", "/org/members")[0] == 200
    status, onboarding = call_api("POST", "/org/accounts/onboarding")
    assert status == 200, onboarding
    assert call_api("GET", "/org/accounts") == (200, {"accounts": []})
    assert call_api("GET", "/org/sso/session")[0] == 200
    assert call_api("GET", "/org/audit")[0] == 200


def test_the_task_events_function_starts_with_only_its_contract_variables(
    api: ApiCall, agent_id: str, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import task_events

    run = api("POST", f"/agents/{agent_id}/tests", body={"input": "Hello"}).body
    [task_arn] = platform.client("ecs").list_tasks(cluster=platform.cluster_arn)["taskArns"]
    only_the_contract_of("handlers.task_events", platform, monkeypatch)

    event = task_event(
        platform, run["runId"], task_arn, lastStatus="STOPPED", stopCode="TaskFailedToStart"
    )
    result = task_events.handler(event, lambda_context("agent-builder-task-events"))

    assert result == {"result": "refunded"}
    assert platform.tests_used() == 0


def test_the_sweeper_starts_with_only_its_contract_variables(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import sweeper

    only_the_contract_of("handlers.sweeper", platform, monkeypatch)

    assert sweeper.handler({"id": "event-1"}, lambda_context("agent-builder-sweeper")) == {
        "checked": 0,
        "stopped": [],
        "failed": [],
    }


def test_the_registration_function_starts_with_only_its_contract_variables(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import registration

    only_the_contract_of("handlers.registration", platform, monkeypatch)
    message = json.dumps(
        {
            "RequestType": "Create",
            "ResponseURL": "https://example.com/not-cloudformation",
            "ResourceProperties": {},
        }
    )
    event = {"Records": [{"Sns": {"Message": message}}]}

    result = registration.handler(event, lambda_context("agent-builder-registration"))

    assert result == {"results": ["refused"], "batchItemFailures": []}
    assert settings.load(settings.ConnectedAccounts).template_version == "1.2.0"


def test_clients_use_aws_endpoint_url_without_a_switch_of_their_own(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    wiring.reset()

    assert clients.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:4566"
    assert clients.client("dynamodb").meta.region_name == "us-east-1"
    wiring.reset()


def test_importing_the_handlers_creates_no_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'lambda_src');"
        "import handlers.api, handlers.org_api, handlers.task_events, handlers.sweeper,"
        " handlers.registration,"
        " handlers.sign_up;"
        "assert 'boto3' not in sys.modules, 'boto3 imported at import time';"
        "assert 'moto' not in sys.modules"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
