"""Builds the services from the settings and the client factory, once per environment.

Nothing here runs at import time; handlers call these on their first invocation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from agent_builder import clients
from agent_builder.gateways.artifacts import ArtifactsGateway
from agent_builder.gateways.ecs import ClusterGateway
from agent_builder.gateways.logs import RunLogsGateway
from agent_builder.gateways.scheduler import TimeLimitScheduler
from agent_builder.repositories.agents import AgentsRepository
from agent_builder.repositories.ledger import LaunchLedger, Limits
from agent_builder.repositories.profiles import ProfilesRepository
from agent_builder.repositories.runs import RunsRepository
from agent_builder.services.agents import AgentService
from agent_builder.services.launches import LaunchService, PlatformLauncher
from agent_builder.services.profiles import ProfileService
from agent_builder.services.runs import RunService
from agent_builder.services.sweeper import Sweeper
from agent_builder.services.task_events import TaskEventService
from agent_builder.settings import Settings, get_settings


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


@functools.cache
def api_services() -> ApiServices:
    settings = get_settings()
    dynamodb = clients.client("dynamodb")
    profiles_repo = ProfilesRepository(dynamodb, settings.profiles_table)
    profiles = ProfileService(
        profiles_repo,
        dynamodb,
        usage_table=settings.usage_table,
        tests_per_month=settings.free_tests_per_month,
    )
    agents = AgentService(
        AgentsRepository(dynamodb, settings.agents_table),
        profiles,
        allowed_models=settings.allowed_models,
        max_output_tokens=settings.max_output_tokens,
    )
    ledger = _ledger(settings)
    platform = PlatformLauncher(
        ledger=ledger,
        artifacts=ArtifactsGateway(clients.client("s3"), settings.artifacts_bucket),
        cluster=_cluster(settings),
        scheduler=_scheduler(settings),
        limits=Limits(
            tests_per_month=settings.free_tests_per_month,
            launches_per_minute=settings.launches_per_minute,
        ),
        max_test_minutes=settings.max_test_minutes,
        max_output_tokens=settings.max_output_tokens,
        retention_days=settings.run_retention_days,
        project=settings.project_name,
    )
    runs = RunService(
        _runs(settings),
        ledger,
        RunLogsGateway(clients.client("logs"), group_name=settings.log_group_name),
        log_stream_prefix=settings.log_stream_prefix,
        container_name=settings.runner_container_name,
        retention_days=settings.run_retention_days,
    )
    return ApiServices(
        profiles=profiles,
        agents=agents,
        launches=LaunchService(agents, profiles_repo, {"platform": platform}),
        runs=runs,
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
    for built in (api_services, task_event_service, sweeper, get_settings):
        built.cache_clear()
    if not keep_clients:
        clients.reset()
