"""Builds each function's services from its settings groups and the client factory.

One factory per handler, named for it, built once per execution environment on the
first invocation (nothing runs at import time): `api_services()` (with
`customer_services()`, its Tier 2 part, built on the first Tier 2 request),
`task_event_services()`, `sweeper_services()`, `registration_services()`, `sign_up_services()`. Each loads
only the settings groups of its handler (settings.HANDLER_GROUPS). The settings module
itself is imported inside the factories: defining its groups is work the handler's cold
import need not do before the first invocation (scripts/bench_runtime.py measures it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_builder import clients

if TYPE_CHECKING:
    from agent_builder import settings
    from agent_builder.gateways.ecs import ClusterTasks
    from agent_builder.gateways.role_chain import RoleChain
    from agent_builder.oidc_bridge.service import OidcBridge
    from agent_builder.repositories.accounts import AccountsRepository
    from agent_builder.repositories.audit import AuditLog
    from agent_builder.repositories.ledger import LaunchLedger
    from agent_builder.repositories.profiles import ProfilesRepository
    from agent_builder.runs import LaunchRequest
    from agent_builder.services.account_launcher import AccountLauncher
    from agent_builder.services.accounts import AccountService
    from agent_builder.services.agents import AgentService
    from agent_builder.services.audit_trail import AuditTrail
    from agent_builder.services.customer_launcher import CustomerLauncher
    from agent_builder.services.customer_runs import AccountRuns, RunSessions
    from agent_builder.services.enterprise_launcher import EnterpriseLauncher, OrganizationAccess
    from agent_builder.services.free_tier import FreeTierSwitch
    from agent_builder.services.idp_reconcile import IdpReconcileService
    from agent_builder.services.launches import (
        Launcher,
        LaunchRecords,
        LaunchService,
    )
    from agent_builder.services.org_accounts import OrgAccountService
    from agent_builder.services.org_setup import OrgSetupService
    from agent_builder.services.organizations import OrganizationService
    from agent_builder.services.profiles import ProfileService
    from agent_builder.services.registration import RegistrationService
    from agent_builder.services.runs import RunService
    from agent_builder.services.sign_up import SignUpService
    from agent_builder.services.sso_config import SsoConfigService
    from agent_builder.services.sso_sessions import SsoSessionService
    from agent_builder.services.sweeper import Sweeper
    from agent_builder.services.task_events import TaskEventService


def _ledger(store: settings.RunStore, audit: AuditLog | None) -> LaunchLedger:
    from agent_builder.repositories.ledger import LaunchLedger

    return LaunchLedger(
        clients.client("dynamodb"),
        runs_table=store.runs_table,
        usage_table=store.usage_table,
        profiles_table=store.profiles_table,
        audit=audit,
    )


def _launch_records(ledger: LaunchLedger, audit: AuditLog) -> LaunchRecords:
    from agent_builder import settings
    from agent_builder.repositories.ledger import Limits
    from agent_builder.services.launches import LaunchRecords

    limits = settings.load(settings.Limits)
    ceilings = settings.load(settings.Ceilings)
    return LaunchRecords(
        ledger=ledger,
        audit=audit,
        limits=Limits(
            tests_per_month=limits.free_tests_per_month,
            launches_per_minute=limits.launches_per_minute,
            max_running_tests=ceilings.max_concurrent_test_tasks,
            platform_tests_per_month=ceilings.platform_free_tests_per_month,
        ),
        retention_days=settings.load(settings.RunStore).run_retention_days,
        max_output_tokens=limits.max_output_tokens,
    )


def _cluster_tasks() -> ClusterTasks:
    from agent_builder import settings
    from agent_builder.gateways.ecs import ClusterTasks

    return ClusterTasks(
        clients.client("ecs"), cluster_arn=settings.load(settings.PlatformCluster).cluster_arn
    )


# ---- handlers.api -------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiServices:
    profiles: ProfileService
    agents: AgentService
    launches: LaunchService
    runs: RunService


class _OnFirstUse:
    """A tier router's target (customer, enterprise), built with its settings when first
    used: a freemium launch parses no Tier 2 or 3 settings."""

    def __init__(self, build: Callable[[], Launcher]) -> None:
        self._build = build

    def launch(self, request: LaunchRequest) -> dict[str, Any]:
        return self._build().launch(request)


@functools.cache
def api_services() -> ApiServices:
    from agent_builder import settings
    from agent_builder.gateways.artifacts import ArtifactsGateway
    from agent_builder.gateways.ecs import ClusterGateway
    from agent_builder.gateways.logs import RunLogsGateway
    from agent_builder.gateways.scheduler import TimeLimitScheduler
    from agent_builder.repositories.agents import AgentsRepository
    from agent_builder.repositories.audit import AuditLog
    from agent_builder.repositories.profiles import ProfilesRepository
    from agent_builder.repositories.runs import RunsRepository
    from agent_builder.services.agents import AgentService
    from agent_builder.services.launches import LaunchService, PlatformLauncher
    from agent_builder.services.profiles import ProfileService
    from agent_builder.services.runs import RunService

    project = settings.load(settings.Project)
    store = settings.load(settings.RunStore)
    cluster_arn = settings.load(settings.PlatformCluster).cluster_arn
    container = settings.load(settings.RunnerContainer).runner_container_name
    launch = settings.load(settings.PlatformLaunch)
    tables = settings.load(settings.ApiTables)
    limits = settings.load(settings.Limits)
    dynamodb = clients.client("dynamodb")
    audit = AuditLog(dynamodb, tables.audit_table)
    ledger = _ledger(store, audit)
    profiles_repo = ProfilesRepository(dynamodb, store.profiles_table)
    profiles = ProfileService(profiles_repo, ledger, tests_per_month=limits.free_tests_per_month)
    agents = AgentService(
        AgentsRepository(
            dynamodb,
            tables.agents_table,
            audit=audit,
            profiles_table=store.profiles_table,
            max_per_user=settings.load(settings.Ceilings).max_agents_per_user,
        ),
        profiles,
        allowed_models=limits.allowed_models,
        max_output_tokens=limits.max_output_tokens,
    )
    platform = PlatformLauncher(
        records=_launch_records(ledger, audit),
        artifacts=ArtifactsGateway(clients.client("s3"), launch.artifacts_bucket),
        cluster=ClusterGateway(
            clients.client("ecs"),
            cluster_arn=cluster_arn,
            task_definition_arn=launch.task_definition_arn,
            container_name=container,
            subnet_ids=launch.subnet_ids,
            security_group_id=launch.security_group_id,
            use_spot=launch.use_spot,
        ),
        scheduler=TimeLimitScheduler(
            clients.client("scheduler"),
            group_name=settings.load(settings.TimeLimitSchedules).schedule_group_name,
            role_arn=launch.scheduler_role_arn,
            cluster_arn=cluster_arn,
        ),
        max_test_minutes=settings.load(settings.TimeLimit).max_test_minutes,
        project=project.project_name,
    )
    runs = RunService(
        RunsRepository(dynamodb, store.runs_table),
        ledger,
        RunLogsGateway(clients.client("logs"), group_name=launch.log_group_name),
        log_stream_prefix=launch.log_stream_prefix,
        container_name=container,
        retention_days=store.run_retention_days,
        remote={
            "customer": lambda: customer_services().customer_runs,
            "enterprise": lambda: enterprise_deployments().runs,
        },
    )
    launchers: dict[str, Launcher] = {
        "platform": platform,
        "customer": _OnFirstUse(lambda: customer_services().customer_launcher),
        "enterprise": _OnFirstUse(lambda: enterprise_deployments().launcher),
    }
    return ApiServices(
        profiles=profiles,
        agents=agents,
        launches=LaunchService(
            agents,
            profiles_repo,
            launchers,
            region_check=lambda member, region, agent_id: org_services().organizations.check_region(
                member, region, agent_id
            ),
        ),
        runs=runs,
    )


@dataclass(frozen=True)
class OrgServices:
    organizations: OrganizationService
    audit: AuditTrail
    # The profiles the /org function's role check reads (handlers/org_api.py).
    profiles: ProfilesRepository


@functools.cache
def org_services() -> OrgServices:
    """Tier 3 (organisations, audit trails, refusals for role). Imported
    here, on the first request that needs them: the API's cold import does not pay."""
    from agent_builder import settings
    from agent_builder.repositories.audit import AuditLog
    from agent_builder.repositories.organizations import OrganizationsRepository
    from agent_builder.repositories.profiles import ProfilesRepository
    from agent_builder.services.audit_trail import AuditTrail
    from agent_builder.services.organizations import OrganizationService

    config = settings.load(settings.Organizations)
    dynamodb = clients.client("dynamodb")
    audit = AuditLog(dynamodb, config.audit_table)
    profiles = ProfilesRepository(dynamodb, config.profiles_table)
    repository = OrganizationsRepository(
        dynamodb,
        config.organizations_table,
        profiles_table=config.profiles_table,
        accounts_table=config.accounts_table,
        audit=audit,
    )
    return OrgServices(
        organizations=OrganizationService(
            repository, profiles, audit, allow_creation=config.allow_organization_creation
        ),
        audit=AuditTrail(audit),
        profiles=profiles,
    )


@dataclass(frozen=True)
class _Accounts:
    repository: AccountsRepository
    audit: AuditLog
    chain: RoleChain
    service: AccountService


@functools.cache
def _accounts() -> _Accounts:
    """Connected accounts (ConnectedAccounts settings): the API's and registration's.

    Tier 2 modules are imported here, not at the top: the API's cold start does not pay
    for them (urllib's HTTP stack among them) until a Tier 2 request needs them.
    """
    from agent_builder import settings
    from agent_builder.gateways.role_chain import RoleChain
    from agent_builder.repositories.accounts import AccountsRepository
    from agent_builder.repositories.audit import AuditLog
    from agent_builder.repositories.profiles import ProfilesRepository
    from agent_builder.services.accounts import AccountService, ConnectionValidator

    project = settings.load(settings.Project).project_name
    config = settings.load(settings.ConnectedAccounts)
    dynamodb = clients.client("dynamodb")
    audit = AuditLog(dynamodb, config.audit_table)
    repository = AccountsRepository(
        dynamodb, config.accounts_table, profiles_table=config.profiles_table, audit=audit
    )
    chain = RoleChain(
        clients.client("sts"), launcher_role_arn=config.launcher_role_arn, session_prefix=project
    )
    service = AccountService(
        repository,
        ProfilesRepository(dynamodb, config.profiles_table),
        audit,
        ConnectionValidator(chain, launcher_role_arn=config.launcher_role_arn),
        project=project,
        platform_account_id=config.platform_account_id,
        platform_region=settings.aws_region() or config.registration_topic_arn.split(":")[3],
        customer_role_name=config.customer_role_name,
        registration_topic_arn=config.registration_topic_arn,
        template_url=config.template_url,
        template_version=config.template_version,
    )
    return _Accounts(repository=repository, audit=audit, chain=chain, service=service)


def _account_launcher(audit: AuditLog) -> AccountLauncher:
    """Deployments into another AWS account (Tier 2 and 3): the customer runner's task."""
    from agent_builder import settings
    from agent_builder.repositories.runs import RunsRepository
    from agent_builder.services.account_launcher import AccountLauncher

    store = settings.load(settings.RunStore)
    runner = settings.load(settings.CustomerRunner)
    return AccountLauncher(
        records=_launch_records(_ledger(store, audit), audit),
        runs=RunsRepository(clients.client("dynamodb"), store.runs_table),
        runner_image_uri=runner.runner_image_uri,
        container_name=settings.load(settings.RunnerContainer).runner_container_name,
        architecture=runner.runner_architecture,
        cpu=runner.customer_task_cpu,
        memory_mib=runner.customer_task_memory_mib,
    )


def _account_runs(sessions: RunSessions) -> AccountRuns:
    """Reading runs in another AWS account (Tier 2 and 3) through `sessions`."""
    from agent_builder import settings
    from agent_builder.repositories.runs import RunsRepository
    from agent_builder.services.customer_runs import AccountRuns

    store = settings.load(settings.RunStore)
    return AccountRuns(
        sessions=sessions,
        runs=RunsRepository(clients.client("dynamodb"), store.runs_table),
        container_name=settings.load(settings.RunnerContainer).runner_container_name,
        retention_days=store.run_retention_days,
    )


@dataclass(frozen=True)
class CustomerServices:
    accounts: AccountService
    customer_launcher: CustomerLauncher
    customer_runs: AccountRuns


@functools.cache
def customer_services() -> CustomerServices:
    """The API's Tier 2 part: /aws-account, and runs in connected accounts."""
    from agent_builder.services.customer_launcher import CustomerLauncher
    from agent_builder.services.customer_runs import ConnectedAccountSessions

    accounts = _accounts()
    return CustomerServices(
        accounts=accounts.service,
        customer_launcher=CustomerLauncher(
            accounts=accounts.repository,
            chain=accounts.chain,
            launcher=_account_launcher(accounts.audit),
        ),
        customer_runs=_account_runs(ConnectedAccountSessions(accounts.repository, accounts.chain)),
    )


# ---- handlers.task_events, handlers.sweeper, handlers.registration -------------------------


@functools.cache
def task_event_services() -> TaskEventService:
    from agent_builder import settings
    from agent_builder.gateways.artifacts import ArtifactsGateway
    from agent_builder.gateways.scheduler import TimeLimitCanceller
    from agent_builder.pricing import TaskSize
    from agent_builder.repositories.runs import RunsRepository
    from agent_builder.services.task_events import TaskEventService

    store = settings.load(settings.RunStore)
    receipts = settings.load(settings.Receipts)
    return TaskEventService(
        RunsRepository(clients.client("dynamodb"), store.runs_table),
        # Refunds by task events are not audited: this function has no audit table.
        _ledger(store, None),
        TimeLimitCanceller(
            clients.client("scheduler"),
            group_name=settings.load(settings.TimeLimitSchedules).schedule_group_name,
        ),
        ArtifactsGateway(clients.client("s3"), receipts.artifacts_bucket),
        TaskSize(
            cpu_units=receipts.test_task_cpu,
            memory_mib=receipts.test_task_memory_mib,
            architecture=receipts.test_task_architecture,
            spot=receipts.use_spot,
        ),
        cluster_arn=settings.load(settings.PlatformCluster).cluster_arn,
        container_name=settings.load(settings.RunnerContainer).runner_container_name,
        retention_days=store.run_retention_days,
    )


@functools.cache
def sweeper_services() -> Sweeper:
    from agent_builder import settings
    from agent_builder.services.sweeper import Sweeper

    return Sweeper(
        _cluster_tasks(), max_test_minutes=settings.load(settings.TimeLimit).max_test_minutes
    )


@functools.cache
def registration_services() -> RegistrationService:
    from agent_builder import settings
    from agent_builder.gateways.cfn_response import ResponseSender
    from agent_builder.services.registration import RegistrationService

    accounts = _accounts()
    return RegistrationService(
        accounts.service,
        accounts.repository,
        accounts.audit,
        ResponseSender(),
        accounts.chain,
        project=settings.load(settings.Project).project_name,
        # Registrations only connect and disconnect: no Launch Stack link to make here.
        organizations=_org_accounts(accounts, organization_template_url=""),
    )


def _org_accounts(accounts: _Accounts, *, organization_template_url: str) -> OrgAccountService:
    from agent_builder import settings
    from agent_builder.repositories.org_accounts import OrgAccountsRepository, org_key
    from agent_builder.services.accounts import ConnectionValidator
    from agent_builder.services.org_accounts import OrgAccountService

    config = settings.load(settings.ConnectedAccounts)
    audit = accounts.audit
    return OrgAccountService(
        OrgAccountsRepository(clients.client("dynamodb"), config.accounts_table),
        ConnectionValidator(accounts.chain, launcher_role_arn=config.launcher_role_arn),
        project=settings.load(settings.Project).project_name,
        platform_account_id=config.platform_account_id,
        platform_region=settings.aws_region() or config.registration_topic_arn.split(":")[3],
        registration_topic_arn=config.registration_topic_arn,
        template_url=config.template_url,
        organization_template_url=organization_template_url,
        template_version=config.template_version,
        # Each change is in the organisation's trail (and its admin's), in its transaction.
        # (A registration's actor is the organisation's stack, not a user: no user trail.)
        audit_items=lambda organization_id, event: audit.transaction_items(
            dataclasses.replace(event, organization_id=organization_id),
            actor_trail=event.actor != org_key(organization_id),
        ),
    )


@dataclass(frozen=True)
class EnterpriseServices:
    """Tier 3's mechanisms, for the /org/sso* and /org/accounts* routes to call (the
    routes check the caller's role; these take the organisation id)."""

    sso_config: SsoConfigService
    sso_sessions: SsoSessionService
    org_accounts: OrgAccountService
    # How a deployment reaches an organisation's account (a member's session, or its role).
    access: OrganizationAccess


@functools.cache
def enterprise_services() -> EnterpriseServices:
    from agent_builder import settings
    from agent_builder.gateways.identity_center import IdentityCenter
    from agent_builder.gateways.metadata_url import MetadataFetcher
    from agent_builder.gateways.saml_providers import SamlProviders
    from agent_builder.gateways.token_cipher import TokenCipher
    from agent_builder.repositories.sso import SsoRepository
    from agent_builder.services.enterprise_launcher import OrganizationAccess
    from agent_builder.services.sso_config import SsoConfigService
    from agent_builder.services.sso_sessions import SsoSessionService

    sso = settings.load(settings.EnterpriseSso)
    repository = SsoRepository(clients.client("dynamodb"), sso.organizations_table)
    sessions = SsoSessionService(
        repository,
        IdentityCenter(),
        TokenCipher(clients.client("kms"), sso.sso_token_key_arn),
        project=settings.load(settings.Project).project_name,
    )
    accounts = _accounts()
    org_accounts = _org_accounts(
        accounts,
        organization_template_url=settings.load(
            settings.OrganizationAccounts
        ).organization_template_url,
    )
    access = OrganizationAccess(
        sso=repository, sessions=sessions, accounts=org_accounts, chain=accounts.chain
    )
    return EnterpriseServices(
        sso_config=SsoConfigService(
            repository,
            SamlProviders(
                clients.client("cognito-idp"),
                user_pool_id=sso.user_pool_id,
                client_id=sso.user_pool_client_id,
            ),
            MetadataFetcher(allow_private=sso.saml_metadata_allow_private),
        ),
        sso_sessions=sessions,
        org_accounts=org_accounts,
        access=access,
    )


@dataclass(frozen=True)
class EnterpriseDeployments:
    """The core API's Tier 3 part: deployments into an organisation's accounts (the tier
    router's `enterprise` target) and reading those runs. Not the /org function's: it
    neither launches nor has the run store's settings."""

    launcher: EnterpriseLauncher
    runs: AccountRuns


@functools.cache
def enterprise_deployments() -> EnterpriseDeployments:
    from agent_builder.services.enterprise_launcher import EnterpriseLauncher, EnterpriseRunSessions

    enterprise = enterprise_services()
    return EnterpriseDeployments(
        launcher=EnterpriseLauncher(
            enterprise.access,
            _account_launcher(_accounts().audit),
            # The organisation's allowed regions, for a deployment to its default region.
            region_check=lambda member, region, agent_id: org_services().organizations.check_region(
                member, region, agent_id
            ),
        ),
        runs=_account_runs(EnterpriseRunSessions(enterprise.access)),
    )


@functools.cache
def org_setup_services() -> OrgSetupService:
    """handlers.org_api's /org/sso* and /org/accounts* routes, over enterprise_services()."""
    from agent_builder.services.org_setup import OrgSetupService

    enterprise = enterprise_services()
    return OrgSetupService(
        sso_config=enterprise.sso_config,
        sso_sessions=enterprise.sso_sessions,
        org_accounts=enterprise.org_accounts,
        audit=_accounts().audit,
    )


@functools.cache
def sign_up_services() -> SignUpService:
    """handlers.sign_up: the pre sign-up and post confirmation triggers."""
    from agent_builder import settings
    from agent_builder.email_addresses import DomainScreen
    from agent_builder.gateways.user_pool import UserPoolGateway
    from agent_builder.repositories.audit import AuditLog
    from agent_builder.repositories.organizations import OrganizationsRepository
    from agent_builder.repositories.profiles import ProfilesRepository
    from agent_builder.repositories.sso import SsoRepository
    from agent_builder.services.sign_up import SignUpService

    config = settings.load(settings.SignUp)
    dynamodb = clients.client("dynamodb")
    return SignUpService(
        UserPoolGateway(clients.client("cognito-idp")),
        ProfilesRepository(dynamodb, config.profiles_table),
        DomainScreen(config.blocked_email_domains),
        organizations=OrganizationsRepository(
            dynamodb,
            config.organizations_table,
            profiles_table=config.profiles_table,
            audit=AuditLog(dynamodb, config.audit_table),
        ),
        sso=SsoRepository(dynamodb, config.organizations_table),
    )


def free_tier_switch(
    config: settings.BudgetSwitch, *, dynamodb: Any = None, sns: Any = None
) -> FreeTierSwitch:
    """The kill switch from its settings: the budget function's, or (scripts/
    resume_free_tier.py) the deployed function's environment with the owner's clients."""
    from agent_builder.gateways.alarms import AlarmTopic
    from agent_builder.repositories.audit import AuditLog
    from agent_builder.repositories.free_tier import FreeTierState
    from agent_builder.services.free_tier import FreeTierSwitch

    dynamodb = dynamodb or clients.client("dynamodb")
    audit = AuditLog(dynamodb, config.audit_table)
    return FreeTierSwitch(
        FreeTierState(dynamodb, usage_table=config.usage_table, audit=audit),
        audit,
        AlarmTopic(sns or clients.client("sns"), config.alarm_topic_arn),
        budget_topic_arn=config.budget_topic_arn,
        budget_name=config.budget_name,
    )


@functools.cache
def oidc_bridge_services() -> OidcBridge:
    """The GitHub OIDC bridge (handlers.oidc_bridge): its own group, its own modules."""
    from agent_builder import settings
    from agent_builder.oidc_bridge.github import GitHubGateway
    from agent_builder.oidc_bridge.service import BridgeConfig, CachedSecret, OidcBridge
    from agent_builder.oidc_bridge.signing import KmsSigner
    from agent_builder.repositories.bridge_grants import GrantStore

    bridge = settings.load(settings.OidcBridge)
    secrets = clients.client("secretsmanager")
    return OidcBridge(
        config=BridgeConfig(
            issuer=bridge.issuer, client_id=bridge.client_id, redirect_uri=bridge.redirect_uri
        ),
        grants=GrantStore(clients.client("dynamodb"), bridge.bridge_table),
        github=GitHubGateway(
            web_url=bridge.github_url,
            api_url=bridge.github_api_url,
            client_id=bridge.github_client_id,
        ),
        signer=KmsSigner(clients.client("kms"), bridge.signing_key_arn),
        client_secret=CachedSecret(secrets, bridge.client_secret_arn),
        github_client_secret=CachedSecret(secrets, bridge.github_client_secret_name),
    )


@functools.cache
def budget_services() -> FreeTierSwitch:
    from agent_builder import settings

    return free_tier_switch(settings.load(settings.BudgetSwitch))


def reset(*, keep_clients: bool = False) -> None:
    """Forget everything built (tests change the environment between cases).

    Clients hold no state of their own, only a loaded service model; keeping them
    between cases that share credentials and region saves reloading those models.
    """
    from agent_builder import settings

    for built in (
        _accounts,
        api_services,
        customer_services,
        org_services,
        task_event_services,
        sweeper_services,
        registration_services,
        enterprise_services,
        enterprise_deployments,
        org_setup_services,
        sign_up_services,
        oidc_bridge_services,
        budget_services,
        idp_reconcile_services,
    ):
        built.cache_clear()
    settings.reset()
    if not keep_clients:
        clients.reset()


@functools.cache
def idp_reconcile_services() -> IdpReconcileService:
    """handlers.idp_reconcile (Identity stack): the web client's `org-*` providers after
    each deploy and on its schedule."""
    from agent_builder import settings
    from agent_builder.gateways.cfn_response import ResponseSender
    from agent_builder.gateways.saml_providers import SamlProviders
    from agent_builder.services.idp_reconcile import IdpReconcileService

    web = settings.load(settings.WebClient)
    return IdpReconcileService(
        SamlProviders(
            clients.client("cognito-idp"),
            user_pool_id=web.user_pool_id,
            client_id=web.user_pool_client_id,
        ),
        ResponseSender(),
    )
