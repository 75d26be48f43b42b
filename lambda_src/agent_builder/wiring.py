"""Builds the services from the settings and the client factory, once per environment.

Nothing here runs at import time; handlers call these on their first invocation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_builder import clients
from agent_builder.gateways.artifacts import ArtifactsGateway
from agent_builder.gateways.ecs import ClusterGateway
from agent_builder.gateways.logs import RunLogsGateway
from agent_builder.gateways.scheduler import TimeLimitScheduler
from agent_builder.repositories.agents import AgentsRepository
from agent_builder.repositories.audit import AuditLog
from agent_builder.repositories.ledger import LaunchLedger, Limits
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.repositories.runs import RunsRepository
from agent_builder.services.agents import AgentService
from agent_builder.services.caller import Caller
from agent_builder.services.launches import Launcher, LaunchService, PlatformLauncher
from agent_builder.services.profiles import ProfileService
from agent_builder.services.runs import RunService
from agent_builder.services.sweeper import Sweeper
from agent_builder.services.task_events import TaskEventService
from agent_builder.settings import Settings, get_account_settings, get_settings

if TYPE_CHECKING:
    from agent_builder.services.accounts import AccountService
    from agent_builder.services.customer_runs import CustomerLauncher, CustomerRuns
    from agent_builder.services.registration import RegistrationService


@dataclass(frozen=True)
class ApiServices:
    profiles: ProfileService
    agents: AgentService
    launches: LaunchService
    runs: RunService


def _ledger(settings: Settings) -> LaunchLedger:
    return LaunchLedger(
        clients.client("dynamodb"),
        runs_table=settings.runs_table,
        usage_table=settings.usage_table,
        profiles_table=settings.profiles_table,
    )


def _cluster(settings: Settings) -> ClusterGateway:
    return ClusterGateway(
        clients.client("ecs"),
        cluster_arn=settings.cluster_arn,
        task_definition_arn=settings.task_definition_arn,
        container_name=settings.runner_container_name,
        subnet_ids=settings.subnet_ids,
        security_group_id=settings.security_group_id,
        use_spot=settings.use_spot,
    )


def _scheduler(settings: Settings) -> TimeLimitScheduler:
    return TimeLimitScheduler(
        clients.client("scheduler"),
        group_name=settings.schedule_group_name,
        role_arn=settings.scheduler_role_arn,
        cluster_arn=settings.cluster_arn,
    )


def _runs(settings: Settings) -> RunsRepository:
    return RunsRepository(clients.client("dynamodb"), settings.runs_table)


def _limits(settings: Settings) -> Limits:
    return Limits(
        tests_per_month=settings.free_tests_per_month,
        launches_per_minute=settings.launches_per_minute,
    )


class _OnFirstUse:
    """The tier router's customer target, built (with the Tier 2 settings) when first used."""

    def __init__(self, build: Callable[[], Launcher]) -> None:
        self._build = build

    def launch(self, caller: Caller, agent: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._build().launch(caller, agent, **kwargs)


@functools.cache
def api_services() -> ApiServices:
    settings = get_settings()
    dynamodb = clients.client("dynamodb")
    profiles_repo = ProfilesRepository(dynamodb, settings.profiles_table)
    audit = AuditLog(dynamodb, settings.audit_table)
    profiles = ProfileService(
        profiles_repo,
        dynamodb,
        usage_table=settings.usage_table,
        tests_per_month=settings.free_tests_per_month,
    )
    agents = AgentService(
        AgentsRepository(dynamodb, settings.agents_table),
        profiles,
        audit,
        allowed_models=settings.allowed_models,
        max_output_tokens=settings.max_output_tokens,
    )
    ledger = _ledger(settings)
    platform = PlatformLauncher(
        ledger=ledger,
        artifacts=ArtifactsGateway(clients.client("s3"), settings.artifacts_bucket),
        cluster=_cluster(settings),
        scheduler=_scheduler(settings),
        audit=audit,
        limits=_limits(settings),
        max_test_minutes=settings.max_test_minutes,
        max_output_tokens=settings.max_output_tokens,
        retention_days=settings.run_retention_days,
        project=settings.project_name,
    )
    runs = RunService(
        _runs(settings),
        ledger,
        RunLogsGateway(clients.client("logs"), group_name=settings.log_group_name),
        audit,
        log_stream_prefix=settings.log_stream_prefix,
        container_name=settings.runner_container_name,
        retention_days=settings.run_retention_days,
        customer=lambda: tier2().customer_runs,
    )
    launchers: dict[str, Launcher] = {
        "platform": platform,
        "customer": _OnFirstUse(lambda: tier2().customer_launcher),
    }
    return ApiServices(
        profiles=profiles,
        agents=agents,
        launches=LaunchService(agents, profiles_repo, launchers),
        runs=runs,
    )


@dataclass(frozen=True)
class Tier2Services:
    accounts: AccountService
    customer_launcher: CustomerLauncher
    customer_runs: CustomerRuns
    registration: RegistrationService


@functools.cache
def tier2() -> Tier2Services:
    """Connected accounts, customer runs and registrations (AccountSettings).

    Imported here, not at the top: the API's cold start does not pay for Tier 2 modules
    (urllib's HTTP stack among them) until a Tier 2 request needs them.
    """
    from agent_builder.gateways.cfn_response import ResponseSender
    from agent_builder.gateways.role_chain import RoleChain
    from agent_builder.repositories.accounts import AccountsRepository
    from agent_builder.services.accounts import AccountService, ConnectionValidator
    from agent_builder.services.customer_runs import CustomerLauncher, CustomerRuns
    from agent_builder.services.registration import RegistrationService

    settings = get_settings()
    tier2_settings = get_account_settings()
    dynamodb = clients.client("dynamodb")
    accounts_repo = AccountsRepository(
        dynamodb, tier2_settings.accounts_table, profiles_table=settings.profiles_table
    )
    audit = AuditLog(dynamodb, settings.audit_table)
    chain = RoleChain(
        clients.client("sts"),
        launcher_role_arn=tier2_settings.launcher_role_arn,
        session_prefix=settings.project_name,
    )
    accounts = AccountService(
        accounts_repo,
        ProfilesRepository(dynamodb, settings.profiles_table),
        audit,
        ConnectionValidator(chain, launcher_role_arn=tier2_settings.launcher_role_arn),
        project=settings.project_name,
        platform_account_id=tier2_settings.platform_account_id,
        platform_region=settings.region or tier2_settings.registration_topic_arn.split(":")[3],
        customer_role_name=tier2_settings.customer_role_name,
        registration_topic_arn=tier2_settings.registration_topic_arn,
        template_url=tier2_settings.template_url,
        template_version=tier2_settings.template_version,
    )
    runs = _runs(settings)
    return Tier2Services(
        accounts=accounts,
        customer_launcher=CustomerLauncher(
            accounts=accounts_repo,
            chain=chain,
            ledger=_ledger(settings),
            runs=runs,
            audit=audit,
            limits=_limits(settings),
            retention_days=settings.run_retention_days,
            max_output_tokens=settings.max_output_tokens,
            runner_image_uri=tier2_settings.runner_image_uri,
            container_name=settings.runner_container_name,
            architecture=tier2_settings.runner_architecture,
            cpu=tier2_settings.customer_task_cpu,
            memory_mib=tier2_settings.customer_task_memory_mib,
        ),
        customer_runs=CustomerRuns(
            accounts=accounts_repo,
            chain=chain,
            runs=runs,
            container_name=settings.runner_container_name,
            retention_days=settings.run_retention_days,
        ),
        registration=RegistrationService(
            accounts,
            accounts_repo,
            audit,
            ResponseSender(local_prefix=tier2_settings.local_response_url_prefix),
            project=settings.project_name,
        ),
    )


@functools.cache
def task_event_service() -> TaskEventService:
    settings = get_settings()
    return TaskEventService(
        _runs(settings),
        _ledger(settings),
        _scheduler(settings),
        cluster_arn=settings.cluster_arn,
        container_name=settings.runner_container_name,
        retention_days=settings.run_retention_days,
    )


@functools.cache
def sweeper() -> Sweeper:
    settings = get_settings()
    return Sweeper(_cluster(settings), max_test_minutes=settings.max_test_minutes)


def reset(*, keep_clients: bool = False) -> None:
    """Forget everything built (tests change the environment between cases).

    Clients hold no state of their own, only a loaded service model; keeping them
    between cases that share credentials and region saves reloading those models.
    """
    for built in (api_services, tier2, task_event_service, sweeper, get_settings):
        built.cache_clear()
    get_account_settings.cache_clear()
    if not keep_clients:
        clients.reset()
