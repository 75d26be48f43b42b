"""Stack 3, the control plane: HTTP API, tables, functions, event wiring and alarms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CfnOutput, Duration, Fn
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.agent_cluster import cluster_name
from constructs.agent_runner_task import AgentRunnerTask
from constructs.cluster_tasks import ClusterTasks
from constructs.control_plane_api import CORE, ORGANIZATIONS, ControlPlaneApi
from constructs.control_plane_functions import PRE_SIGN_UP, ControlPlaneFunctions
from constructs.control_plane_tables import ControlPlaneTables
from constructs.customer_registration import CustomerRegistration
from constructs.enterprise_sso import grant_identity_providers, grant_token_use, sso_token_key
from constructs.nag import acknowledge, nag_text
from constructs.operational_alarms import OperationalAlarms
from constructs.sign_up_triggers import add_sign_up_triggers
from constructs.time_limit import TimeLimit
from stacks.config import PlatformConfig
from stacks.control_plane_environment import environment_values
from stacks.function_environments import environments
from stacks.identity_stack import IdentityStack
from stacks.logical_ids import DeployedIdsStack
from stacks.platform_stack import PlatformStack

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = ROOT / "lambda_src"
AGENT_RUNNER = ROOT / "agent_runner"


def powertools_version() -> str:
    """The Powertools version pinned in lambda_src/requirements.txt (tests run on it)."""
    for line in (LAMBDA_SRC / "requirements.txt").read_text().splitlines():
        if line.startswith("aws-lambda-powertools=="):
            return line.split("==", 1)[1].strip()
    raise ValueError("lambda_src/requirements.txt must pin aws-lambda-powertools==<version>")


class ControlPlaneStack(DeployedIdsStack):
    """The API users call, what it stores, and the functions that run and watch tests."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        platform: PlatformStack,
        identity: IdentityStack,
        console_origins: Sequence[str],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        prefix = self.prefix = config.prefix
        agents = platform.agents
        self.add_stack_dependency(platform)

        # Deployed platforms created what these constructs hold as the stack's own children:
        # `transparent` keeps those logical ids (stacks/logical_ids.py; the stateful ones are
        # pinned by tests/infra/test_stateful_ids.py).
        self.tables = self.transparent(
            ControlPlaneTables(self, "Tables", removal_policy=config.removal_policy)
        )
        self.runner = AgentRunnerTask(
            self,
            "Runner",
            prefix=prefix,
            directory=str(AGENT_RUNNER),
            repository=platform.repository,
            execution_role=agents.execution_role,
            task_role=agents.task_role,
            log_group=agents.log_group,
            cpu=config.test_task_cpu,
            memory_mib=config.test_task_memory_mib,
            arm64=config.test_task_architecture == "ARM64",
        )
        self.cluster = ClusterTasks(
            cluster_name=cluster_name(prefix), cluster_arn=agents.cluster.cluster_arn
        )
        self.time_limit = self.transparent(
            TimeLimit(self, "TimeLimit", prefix=prefix, cluster=self.cluster)
        )

        # Tier 3: members' IAM Identity Center tokens are stored encrypted with this key,
        # when the owner turns those sessions on (a KMS key is $1 a month: issue 13 keeps
        # the default platform's idle cost within $2.50).
        self.sso_token_key = (
            sso_token_key(self, "SsoTokenKey", prefix=prefix, removal_policy=config.removal_policy)
            if config.enterprise_sso
            else None
        )
        self.identity = identity
        functions = self.transparent(
            ControlPlaneFunctions(
                self,
                "Functions",
                prefix=prefix,
                code_directory=str(LAMBDA_SRC),
                powertools_version=powertools_version(),
                log_retention=config.log_retention,
            )
        )
        environment = environments(environment_values(self, config, platform))
        self.api_function = functions.add(
            "Api",
            handler="handlers.api.handler",
            description="The HTTP API: profiles, agents, tests, runs",
            environment=environment["Api"],
        )
        self.org_api_function = functions.add(
            "OrgApi",
            handler="handlers.org_api.handler",
            description="The HTTP API's /org routes: organisations, members, SSO, accounts",
            environment=environment["OrgApi"],
        )
        self.task_events_function = functions.add(
            "TaskEvents",
            handler="handlers.task_events.handler",
            description="Follows ECS task state changes into run records",
            environment=environment["TaskEvents"],
            asynchronous=True,
        )
        self.sweeper_function = functions.add(
            "Sweeper",
            handler="handlers.sweeper.handler",
            description="Backstop: stops test tasks past the time limit every minute",
            environment=environment["Sweeper"],
            asynchronous=True,
            timeout_seconds=50,
        )
        self.registration_function = functions.add(
            "Registration",
            handler="handlers.registration.handler",
            description="Connects and disconnects customer accounts from their onboarding stacks",
            environment=environment["Registration"],
            asynchronous=True,
            timeout_seconds=60,
        )
        self.sign_up_triggers = add_sign_up_triggers(
            functions,
            environment=environment,
            user_pool=identity.users.user_pool,
            profiles=self.tables.profiles,
        )
        self.tables.grant_sso_sign_up(
            self.sign_up_triggers.pre_sign_up.role, self.sign_up_triggers.post_confirmation.role
        )
        self.budget_function = functions.add(
            "BudgetSwitch",
            handler="handlers.budget.handler",
            description="Budget kill switch: pauses the free tier when the month's budget is spent",
            environment=environment["BudgetSwitch"],
            asynchronous=True,
        )
        self._grant(platform)

        events.Rule(
            self,
            "TaskStateChanges",
            description="ECS task state changes on the test cluster, to the run records",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={"clusterArn": [agents.cluster.cluster_arn]},
            ),
            targets=[targets.LambdaFunction(self.task_events_function.function, retry_attempts=4)],
        )
        events.Rule(
            self,
            "SweepEveryMinute",
            description="Backstop for the test time limit",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[targets.LambdaFunction(self.sweeper_function.function, retry_attempts=0)],
        )

        users = identity.users
        self.api = self.transparent(
            ControlPlaneApi(
                self,
                "PublicApi",
                prefix=prefix,
                handlers={
                    CORE: self.api_function.function,
                    ORGANIZATIONS: self.org_api_function.function,
                },
                user_pool=users.user_pool,
                user_pool_client=users.client,
                required_scope=users.api_scope_name,
                allowed_origins=console_origins,
                log_retention=config.log_retention,
            )
        )
        self.alarms = self.transparent(
            OperationalAlarms(
                self,
                "Alarms",
                functions={name: fn.function for name, fn in functions.functions.items()},
                api=self.api.http_api,
                tables=self.tables.by_name,
                alarm_action=platform.alarm_action,
                errors_expected=(PRE_SIGN_UP,),
            )
        )
        CfnOutput(self, "ApiUrl", value=self.api.url)
        self.keep_deployed_ids()

    def _grant(self, platform: PlatformStack) -> None:
        """Each function gets what it touches and nothing else."""
        api = self.api_function.role
        self.tables.grant_user_data(api)
        self.tables.grant_organizations(api)
        # A named export (rather than CDK's hashed one) so the acknowledgements below can
        # name the exact resource.
        export_name = f"{self.prefix}-artifacts-bucket-arn"
        platform.export_value(platform.artifacts.bucket_arn, name=export_name)
        run_objects = f"{Fn.import_value(export_name)}/runs/*"
        for role, action, document, why in (
            (api, "s3:PutObject", "request.json", "The API writes each run's request.json"),
            (
                self.task_events_function.role,
                "s3:GetObject",
                "result.json",
                "Task events read each stopped run's result.json (its receipt's tokens)",
            ),
        ):
            objects = f"{run_objects}/{document}"
            role.add_to_principal_policy(iam.PolicyStatement(actions=[action], resources=[objects]))
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_text(self, objects)}]",
                f"{why} under runs/<runId>/; run ids are random, so the key has one "
                f"wildcard, for {document} objects only.",
            )
        self.runner.grant_run(api, cluster=self.cluster)
        self.time_limit.grant_create_schedules(api)
        # Stop a task whose time-limit schedule could not be created (never leave one unlimited).
        self.cluster.grant(api, "ecs:StopTask")
        self.runner.grant_read_logs(api)
        # Tier 3: the /org function. Only it manages the organisations' SAML IdPs; it and
        # the core API (enterprise deployments) use the key of stored SSO tokens.
        org_api = self.org_api_function.role
        self.tables.grant_organizations(org_api)
        self.tables.grant_account_connections(org_api)
        grant_identity_providers(org_api, self.identity.users.user_pool)
        if self.sso_token_key is not None:
            grant_token_use(self.sso_token_key, [api, org_api])

        events_role = self.task_events_function.role
        self.tables.grant_run_updates(events_role)
        self.time_limit.grant_delete_schedules(events_role)

        sweeper = self.sweeper_function.role  # ECS only: it needs no table
        self.cluster.grant_list(sweeper)
        self.cluster.grant(sweeper, "ecs:DescribeTasks", "ecs:StopTask")

        # The kill switch marks the month's platform usage item, audits, and alarms.
        platform.kill_switch.subscribe(self.budget_function.function, alarms=platform.alarm_topic)
        self.tables.grant_free_tier_switch(self.budget_function.role)

        # Tier 2: the API and the registration function work in customers' accounts.
        tier2 = (api, self.registration_function.role)
        for role in tier2:
            self.tables.grant_account_connections(role)
        self.registration = self.transparent(
            CustomerRegistration(
                self,
                "CustomerRegistration",
                prefix=self.prefix,
                subscriber=self.registration_function.function,
                launcher_users=tier2,
                alarm_action=platform.alarm_action,
            )
        )
