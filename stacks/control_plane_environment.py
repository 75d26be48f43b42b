"""The values of every variable a control-plane function reads (stacks/function_environments.py
picks each function's names from them; lambda_src/CONTRACT.md says what they mean)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from constructs.agent_runner_task import CONTAINER_NAME, LOG_STREAM_PREFIX
from constructs.customer_registration import launcher_role_arn, registration_topic_arn
from stacks.config import PlatformConfig
from stacks.platform_stack import PlatformStack

if TYPE_CHECKING:
    from stacks.control_plane_stack import ControlPlaneStack


def environment_values(
    plane: ControlPlaneStack, config: PlatformConfig, platform: PlatformStack
) -> dict[str, str]:
    """Every variable any function reads; stacks/function_environments.py picks per function."""
    prefix = config.prefix
    agents, network, tables = platform.agents, platform.network, plane.tables
    return {
        "PROJECT_NAME": prefix,
        "POWERTOOLS_SERVICE_NAME": f"{prefix}-control-plane",
        "PROFILES_TABLE": tables.profiles.table_name,
        "AGENTS_TABLE": tables.agents.table_name,
        "RUNS_TABLE": tables.runs.table_name,
        "USAGE_TABLE": tables.usage.table_name,
        "CLUSTER_ARN": agents.cluster.cluster_arn,
        "TASK_DEFINITION_ARN": plane.runner.task_definition.task_definition_arn,
        "RUNNER_CONTAINER_NAME": CONTAINER_NAME,
        "SUBNET_IDS": ",".join(s.subnet_id for s in network.subnets.subnets),
        "SECURITY_GROUP_ID": network.task_security_group.security_group_id,
        "USE_SPOT": str(config.test_task_use_spot).lower(),
        "ARTIFACTS_BUCKET": platform.artifacts.bucket_name,
        "LOG_GROUP_NAME": agents.log_group.log_group_name,
        "LOG_STREAM_PREFIX": LOG_STREAM_PREFIX,
        "FREE_TESTS_PER_MONTH": str(config.free_tests_per_month),
        "MAX_TEST_MINUTES": str(config.max_test_minutes),
        "LAUNCHES_PER_MINUTE": str(config.launches_per_minute),
        "ALLOWED_MODELS": ",".join(config.allowed_models),
        "MAX_OUTPUT_TOKENS": str(config.max_output_tokens),
        "MAX_CONCURRENT_TEST_TASKS": str(config.max_concurrent_test_tasks),
        "PLATFORM_FREE_TESTS_PER_MONTH": str(config.platform_free_tests_per_month),
        "MAX_AGENTS_PER_USER": str(config.max_agents_per_user),
        "SCHEDULE_GROUP_NAME": plane.time_limit.schedule_group.schedule_group_name,
        "SCHEDULER_ROLE_ARN": plane.time_limit.stopper_role.role_arn,
        "RUN_RETENTION_DAYS": str(config.run_retention_days),
        # Tier 2: connecting and deploying into customers' accounts. The launcher and the
        # topic are spelled as ARNs: they trust and feed these very functions.
        "ACCOUNTS_TABLE": tables.accounts.table_name,
        "AUDIT_TABLE": tables.audit.table_name,
        "PLATFORM_ACCOUNT_ID": plane.account,
        "LAUNCHER_ROLE_ARN": launcher_role_arn(plane, prefix),
        "CUSTOMER_ROLE_NAME": f"{prefix}-deployer",
        "REGISTRATION_TOPIC_ARN": registration_topic_arn(plane, prefix),
        "TEMPLATE_VERSION": config.template_version,
        "TEMPLATE_URL": platform.customer_template.template_url,
        "RUNNER_IMAGE_URI": plane.runner.image_uri,
        "RUNNER_ARCHITECTURE": config.test_task_architecture,
        "CUSTOMER_TASK_CPU": str(config.test_task_cpu),
        "CUSTOMER_TASK_MEMORY_MIB": str(config.test_task_memory_mib),
        # Tier 3: enterprise SSO (the SAML IdPs live in the identity stack's pool).
        "USER_POOL_ID": plane.identity.users.user_pool.user_pool_id,
        "USER_POOL_CLIENT_ID": plane.identity.users.client.user_pool_client_id,
        "SSO_TOKEN_KEY_ARN": plane.sso_token_key.key_arn if plane.sso_token_key else "",
        "ORGANIZATION_TEMPLATE_URL": platform.customer_template.organization_template_url,
        "BLOCKED_EMAIL_DOMAINS": ",".join(config.blocked_email_domains),
        "TEST_TASK_CPU": str(config.test_task_cpu),
        "TEST_TASK_MEMORY_MIB": str(config.test_task_memory_mib),
        "TEST_TASK_ARCHITECTURE": config.test_task_architecture,
        "BUDGET_TOPIC_ARN": platform.kill_switch.topic.topic_arn,
        "BUDGET_NAME": platform.kill_switch.budget_name,
        "ALARM_TOPIC_ARN": platform.alarm_topic.topic_arn,
        "ORGANIZATIONS_TABLE": tables.organizations.table_name,
        "ALLOW_ORGANIZATION_CREATION": str(config.allow_organization_creation).lower(),
    }
