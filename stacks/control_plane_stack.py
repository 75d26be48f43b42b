"""Stack 3, the control plane: HTTP API, tables, functions, event wiring and alarms."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm

from constructs import Construct
from constructs.agent_runner_task import CONTAINER_NAME, LOG_STREAM_PREFIX, AgentRunnerTask
from constructs.python_function import PythonFunction
from stacks.config import PlatformConfig
from stacks.identity_stack import IdentityStack
from stacks.nag import LOG_GROUP_KMS_REASON, acknowledge, checkov_skip, nag_text
from stacks.platform_stack import PlatformStack, log_retention, removal_policy

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = ROOT / "lambda_src"
AGENT_RUNNER = ROOT / "agent_runner"

# Every route of the HTTP API contract this stack serves, with the launch routes that
# get their own, tighter throttle. tests/infra checks this against dist/openapi.json.
ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/me"),
    ("POST", "/agents"),
    ("GET", "/agents"),
    ("GET", "/agents/{agentId}"),
    ("DELETE", "/agents/{agentId}"),
    ("POST", "/agents/{agentId}/tests"),
    ("POST", "/agents/{agentId}/deployments"),
    ("GET", "/runs"),
    ("GET", "/runs/{runId}"),
    ("GET", "/runs/{runId}/logs"),
    ("POST", "/aws-account/onboarding"),
    ("PUT", "/aws-account"),
    ("GET", "/aws-account"),
    ("DELETE", "/aws-account"),
)
API_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
]
EVENT_ITEM_ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
LAUNCH_ROUTES = ("POST /agents/{agentId}/tests", "POST /agents/{agentId}/deployments")
# Each makes several calls into a customer's account (assume, probe): throttled like launches.
ACCOUNT_ROUTES = ("POST /aws-account/onboarding", "PUT /aws-account")


def powertools_version() -> str:
    """The Powertools version pinned in lambda_src/requirements.txt (tests run on it)."""
    for line in (LAMBDA_SRC / "requirements.txt").read_text().splitlines():
        if line.startswith("aws-lambda-powertools=="):
            return line.split("==", 1)[1].strip()
    raise ValueError("lambda_src/requirements.txt must pin aws-lambda-powertools==<version>")


class ControlPlaneStack(Stack):
    """The API users call, what it stores, and the functions that run and watch tests."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        platform: PlatformStack,
        identity: IdentityStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        prefix = self.prefix = config.prefix
        retention = log_retention(config)
        agents = platform.agents

        self.add_stack_dependency(platform)
        self.tables = self._tables(removal_policy(config))
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

        # The test time limit: each launch creates a one-time schedule in this group that
        # calls ecs:StopTask at the limit; deleting the stack deletes the group and them.
        self.schedule_group = scheduler.ScheduleGroup(
            self,
            "TestTimeouts",
            schedule_group_name=f"{prefix}-test-timeouts",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stopper_role = iam.Role(
            self,
            "TimeLimitStopper",
            description="EventBridge Scheduler stops test tasks that reach the time limit",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            ),
        )
        # The cluster's physical name (the customer role scopes by it too), as a literal so
        # the ARNs below read plainly in the template and in cdk-nag's findings.
        self.cluster_name = f"{prefix}-cluster"
        cluster_tasks = self.cluster_tasks_arn()
        self.stopper_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask"],
                resources=[cluster_tasks],
                conditions={"ArnEquals": {"ecs:cluster": agents.cluster.cluster_arn}},
            )
        )
        self.acknowledge_cluster_tasks(self.stopper_role)

        environment = {
            "PROJECT_NAME": prefix,
            "POWERTOOLS_SERVICE_NAME": f"{prefix}-control-plane",
            "PROFILES_TABLE": self.tables["profiles"].table_name,
            "AGENTS_TABLE": self.tables["agents"].table_name,
            "RUNS_TABLE": self.tables["runs"].table_name,
            "USAGE_TABLE": self.tables["usage"].table_name,
            "CLUSTER_ARN": agents.cluster.cluster_arn,
            "TASK_DEFINITION_ARN": self.runner.task_definition.task_definition_arn,
            "RUNNER_CONTAINER_NAME": CONTAINER_NAME,
            "SUBNET_IDS": ",".join(s.subnet_id for s in platform.network.subnets.subnets),
            "SECURITY_GROUP_ID": platform.network.task_security_group.security_group_id,
            "USE_SPOT": str(config.test_task_use_spot).lower(),
            "ARTIFACTS_BUCKET": platform.artifacts.bucket_name,
            "LOG_GROUP_NAME": agents.log_group.log_group_name,
            "LOG_STREAM_PREFIX": LOG_STREAM_PREFIX,
            "FREE_TESTS_PER_MONTH": str(config.free_tests_per_month),
            "MAX_TEST_MINUTES": str(config.max_test_minutes),
            "LAUNCHES_PER_MINUTE": str(config.launches_per_minute),
            "ALLOWED_MODELS": ",".join(config.allowed_models),
            "MAX_OUTPUT_TOKENS": str(config.max_output_tokens),
            "SCHEDULE_GROUP_NAME": self.schedule_group.schedule_group_name,
            "SCHEDULER_ROLE_ARN": self.stopper_role.role_arn,
            "RUN_RETENTION_DAYS": str(config.run_retention_days),
            # Tier 2: connecting and deploying into customers' accounts.
            "ACCOUNTS_TABLE": self.tables["accounts"].table_name,
            "AUDIT_TABLE": self.tables["audit"].table_name,
            "PLATFORM_ACCOUNT_ID": self.account,
            "LAUNCHER_ROLE_ARN": self.format_arn(
                service="iam", region="", resource="role", resource_name=f"{prefix}-launcher"
            ),
            "CUSTOMER_ROLE_NAME": f"{prefix}-deployer",
            "REGISTRATION_TOPIC_ARN": self.format_arn(
                service="sns",
                resource=f"{prefix}-registrations",
                arn_format=ArnFormat.NO_RESOURCE_NAME,
            ),
            "TEMPLATE_VERSION": config.template_version,
            "TEMPLATE_URL": platform.customer_template.template_url,
            "RUNNER_IMAGE_URI": self.runner.image_uri,
            "RUNNER_ARCHITECTURE": config.test_task_architecture,
            "CUSTOMER_TASK_CPU": str(config.test_task_cpu),
            "CUSTOMER_TASK_MEMORY_MIB": str(config.test_task_memory_mib),
        }
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            # AWS publishes each Powertools release's layer ARN in a public SSM parameter;
            # CloudFormation resolves it at deploy time, so synth stays offline.
            ssm.StringParameter.value_for_string_parameter(
                self, f"/aws/service/powertools/python/arm64/python3.14/{powertools_version()}"
            ),
        )
        code = lambda_.Code.from_asset(
            str(LAMBDA_SRC), exclude=["requirements.txt", "*.md", "**/__pycache__", "**/*.pyc"]
        )

        def function(name: str, handler: str, description: str, **kwargs: object) -> PythonFunction:
            return PythonFunction(
                self,
                name,
                function_name=f"{prefix}-{name.lower()}",
                description=description,
                handler=handler,
                code=code,
                powertools=powertools,
                environment=environment,
                log_retention=retention,
                **kwargs,  # type: ignore[arg-type]
            )

        self.api_function = function(
            "Api", "handlers.api.handler", "The HTTP API: profiles, agents, tests, runs"
        )
        self.task_events_function = function(
            "TaskEvents",
            "handlers.task_events.handler",
            "Follows ECS task state changes into run records",
            asynchronous=True,
        )
        self.sweeper_function = function(
            "Sweeper",
            "handlers.sweeper.handler",
            "Backstop: stops test tasks past the time limit every minute",
            asynchronous=True,
            timeout_seconds=50,
        )
        self.registration_function = function(
            "Registration",
            "handlers.registration.handler",
            "Connects and disconnects customer accounts from their onboarding stacks",
            asynchronous=True,
            timeout_seconds=60,
        )
        self._grant(platform)
        self._tier2()

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

        self.api = self._http_api(config, identity)
        self._alarms(platform)
        CfnOutput(self, "ApiUrl", value=self.api.api_endpoint)

    def _tables(self, removal: RemovalPolicy) -> dict[str, dynamodb.Table]:
        S = dynamodb.AttributeType.STRING

        def table(
            name: str, pk: str, sk: str | None = None, ttl: str | None = None
        ) -> dynamodb.Table:
            table = dynamodb.Table(
                self,
                name,
                partition_key=dynamodb.Attribute(name=pk, type=S),
                sort_key=dynamodb.Attribute(name=sk, type=S) if sk else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=ttl,
                deletion_protection=removal == RemovalPolicy.RETAIN,
                removal_policy=removal,
            )
            checkov_skip(
                table,
                CKV_AWS_119="Encrypted with the AWS-managed DynamoDB KMS key: encryption at rest "
                "with key use logged in CloudTrail, without a customer key billing every month.",
            )
            return table

        runs = table("RunsTable", "runId", ttl="expiresAt")
        runs.add_global_secondary_index(
            index_name="byUser",
            partition_key=dynamodb.Attribute(name="userId", type=S),
            sort_key=dynamodb.Attribute(name="createdAt", type=S),
        )
        # Tier 2: one connected (or pending) AWS account per user; registration messages
        # from customer stacks find their user through the External ID.
        accounts = table("AccountsTable", "userId")
        accounts.add_global_secondary_index(
            index_name="byExternalId",
            partition_key=dynamodb.Attribute(name="externalId", type=S),
        )
        return {
            "profiles": table("ProfilesTable", "userId"),
            "agents": table("AgentsTable", "userId", "agentId"),
            "runs": runs,
            "usage": table("UsageTable", "userId", "period", ttl="expiresAt"),
            "accounts": accounts,
            # Audit trail: pk is the scope read together (user#<id>, later org#<id>), sk the
            # time-ordered event id.
            "audit": table("AuditTable", "scope", "eventId", ttl="expiresAt"),
        }

    def _grant(self, platform: PlatformStack) -> None:
        """Each function gets what it touches and nothing else."""
        agents = platform.agents
        api = self.api_function.role
        t = self.tables
        # Item-level actions only (grant_read_write_data would add Scan, batch writes and
        # every index); TransactWriteItems is authorised per item by these same actions.
        self.allow_items(api, [t["profiles"], t["agents"], t["runs"], t["usage"]], API_ITEM_ACTIONS)
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{t['runs'].table_arn}/index/byUser"]
            )
        )
        # A named export (rather than CDK's hashed one) so the acknowledgement below can
        # name the exact resource.
        export_name = f"{self.prefix}-artifacts-bucket-arn"
        platform.export_value(platform.artifacts.bucket_arn, name=export_name)
        artifacts_arn = Fn.import_value(export_name)
        request_objects = f"{artifacts_arn}/runs/*/request.json"
        api.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[request_objects])
        )
        # Launch: run the runner's task definition on the test cluster, pass its two roles.
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[self.runner.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": agents.cluster.cluster_arn}},
            )
        )
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[self.cluster_tasks_arn()],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[agents.execution_role.role_arn, agents.task_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["scheduler:CreateSchedule"],
                resources=[self._schedules_arn()],
            )
        )
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.stopper_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        # Stop a task whose time-limit schedule could not be created (never leave one unlimited).
        api.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask"],
                resources=[self.cluster_tasks_arn()],
                conditions={"ArnEquals": {"ecs:cluster": agents.cluster.cluster_arn}},
            )
        )
        # GET /runs/{id}/logs reads the runner's streams, nothing else in the group.
        run_streams = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/{self.prefix}/agent-runs:log-stream:{LOG_STREAM_PREFIX}/{CONTAINER_NAME}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        api.add_to_principal_policy(
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[run_streams])
        )
        acknowledge(
            api,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, run_streams)}]",
            "Log streams are named after random ECS task ids; the wildcard covers only the "
            "runner's streams in the platform's agent-runs log group, for GetLogEvents only.",
        )

        events_role = self.task_events_function.role
        self.allow_items(events_role, [t["runs"], t["usage"]], EVENT_ITEM_ACTIONS)
        events_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["scheduler:DeleteSchedule"], resources=[self._schedules_arn()]
            )
        )

        sweeper = self.sweeper_function.role  # ECS only: it needs no table
        sweeper_list_arn = self.format_arn(
            service="ecs", resource="container-instance", resource_name=f"{self.cluster_name}/*"
        )
        sweeper.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:ListTasks"],
                resources=[sweeper_list_arn],
                conditions={"ArnEquals": {"ecs:cluster": agents.cluster.cluster_arn}},
            )
        )
        sweeper.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[self.cluster_tasks_arn()],
                conditions={"ArnEquals": {"ecs:cluster": agents.cluster.cluster_arn}},
            )
        )

        self.acknowledge_cluster_tasks(api)
        self.acknowledge_cluster_tasks(sweeper)
        acknowledge(
            sweeper,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, sweeper_list_arn)}]",
            "ecs:ListTasks is authorised against container-instance ARNs; the wildcard covers "
            "only the test cluster's, and the ecs:cluster condition pins the cluster again.",
        )
        bucket_objects = nag_text(self, request_objects)
        acknowledge(
            api,
            f"AwsSolutions-IAM5[Resource::{bucket_objects}]",
            "The API writes each run's request.json under runs/<runId>/ before launching it; "
            "run ids are random, so the key has one wildcard, for request.json objects only.",
        )
        for role in (api, events_role):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_text(self, self._schedules_arn())}]",
                "One-time time-limit schedules are named after random run ids; the wildcard is "
                "limited to the platform's own schedule group.",
            )

    def _tier2(self) -> None:
        """Tier 2: the registration topic customers' stacks publish to, and the launcher role."""
        prefix = self.prefix
        self.registration_topic = sns.Topic(
            self,
            "Registrations",
            topic_name=f"{prefix}-registrations",
            display_name=f"{prefix} customer account registrations",
            enforce_ssl=True,
        )
        # CloudFormation in a customer's account publishes their stack's custom-resource
        # events here with the customer's credentials; customers are not known in advance.
        self.registration_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CustomerStacksRegister",
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.registration_topic.topic_arn],
            )
        )
        acknowledge(
            self.registration_topic,
            "AwsSolutions-SNS2",
            "Registration messages carry a role ARN, account id and External ID, none of which "
            "grants anything alone (the role trusts only our launcher role); SSE with a KMS key "
            "would also need a key policy open to every customer account.",
        )
        checkov_skip(
            self.registration_topic,
            CKV_AWS_26="Same reason as AwsSolutions-SNS2: customer accounts publish with their own "
            "credentials, which an encrypted topic would need a key policy open to all for.",
        )
        self.registration_topic.add_subscription(
            subscriptions.LambdaSubscription(self.registration_function.function)
        )
        accounts, audit = self.tables["accounts"], self.tables["audit"]
        for role in (self.api_function.role, self.registration_function.role):
            self.allow_items(role, [accounts, self.tables["profiles"]], API_ITEM_ACTIONS)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:Query"],
                    resources=[f"{accounts.table_arn}/index/byExternalId"],
                )
            )
            self.allow_items(role, [audit], ["dynamodb:PutItem"])

        # The one identity customers' deployer roles trust. Its only power is to assume
        # them; the functions that work in customer accounts assume it first.
        self.launcher_role = iam.Role(
            self,
            "Launcher",
            role_name=f"{prefix}-launcher",
            description="Assumes customers' <prefix>-deployer roles, with their External ID",
            assumed_by=iam.CompositePrincipal(
                iam.ArnPrincipal(self.api_function.role.role_arn),
                iam.ArnPrincipal(self.registration_function.role.role_arn),
            ),
            max_session_duration=Duration.hours(1),
        )
        deployer_roles = self.format_arn(
            service="iam",
            region="",
            account="*",
            resource="role",
            resource_name=f"{prefix}-deployer",
        )
        self.launcher_role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeCustomerDeployerRoles",
                actions=["sts:AssumeRole", "sts:SetSourceIdentity"],
                resources=[deployer_roles],
            )
        )
        acknowledge(
            self.launcher_role,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, deployer_roles)}]",
            "Customers' account ids are not known in advance: the launcher may assume only roles "
            "named <prefix>-deployer, in any account, and each such role admits it only with the "
            "customer's External ID.",
        )
        for role in (self.api_function.role, self.registration_function.role):
            role.add_to_principal_policy(
                # No source identity on this hop: it is set on the customer hop, once, to
                # the platform user (AWS forbids changing it along a chain).
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"], resources=[self.launcher_role.role_arn]
                )
            )

    @staticmethod
    def allow_items(role: iam.IRole, tables: list[dynamodb.Table], actions: list[str]) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=[table.table_arn for table in tables])
        )

    def cluster_tasks_arn(self) -> str:
        return self.format_arn(
            service="ecs", resource="task", resource_name=f"{self.cluster_name}/*"
        )

    def acknowledge_cluster_tasks(self, role: iam.IRole) -> None:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, self.cluster_tasks_arn())}]",
            "Task ids are random and only known at launch; the wildcard is limited to tasks of "
            "the platform's test cluster, and the ecs:cluster condition pins the cluster again.",
        )

    def _schedules_arn(self) -> str:
        return self.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.schedule_group.schedule_group_name}/*",
        )

    def _http_api(self, config: PlatformConfig, identity: IdentityStack) -> apigw.HttpApi:
        users = identity.users
        authorizer = authorizers.HttpUserPoolAuthorizer(
            "CognitoJwt", users.user_pool, user_pool_clients=[users.client]
        )
        api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=f"{config.prefix}-api",
            description="agent-builder control-plane API",
            default_authorizer=authorizer,
            create_default_stage=True,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=[config.production_domain],
                allow_methods=[
                    apigw.CorsHttpMethod.GET,
                    apigw.CorsHttpMethod.POST,
                    apigw.CorsHttpMethod.PUT,
                    apigw.CorsHttpMethod.DELETE,
                ],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                max_age=Duration.hours(1),
            ),
        )
        integration = integrations.HttpLambdaIntegration("Api", self.api_function.function)
        for method, path in ROUTES:
            api.add_routes(path=path, methods=[apigw.HttpMethod(method)], integration=integration)

        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            log_group_name=f"/{config.prefix}/api-access",
            retention=log_retention(config),
            removal_policy=RemovalPolicy.DESTROY,
        )
        checkov_skip(access_logs, CKV_AWS_158=LOG_GROUP_KMS_REASON)
        stage = api.default_stage.node.default_child  # type: ignore[union-attr]
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(  # type: ignore[union-attr]
            destination_arn=access_logs.log_group_arn,
            format=_ACCESS_LOG_FORMAT,
        )
        # Whole-API throttle, and a tighter one on the routes that start paid work.
        stage.default_route_settings = apigw.CfnStage.RouteSettingsProperty(  # type: ignore[union-attr]
            throttling_rate_limit=50, throttling_burst_limit=100, detailed_metrics_enabled=True
        )
        stage.route_settings = {  # type: ignore[union-attr]
            route: {"ThrottlingRateLimit": 5, "ThrottlingBurstLimit": 10}
            for route in LAUNCH_ROUTES + ACCOUNT_ROUTES
        }
        return api

    def _alarms(self, platform: PlatformStack) -> None:
        alarms: list[cloudwatch.Alarm] = []
        for fn in (
            self.api_function,
            self.task_events_function,
            self.sweeper_function,
            self.registration_function,
        ):
            name = fn.function.node.scope.node.id  # type: ignore[union-attr]
            for metric, what in (
                (fn.function.metric_errors(), "Errors"),
                (fn.function.metric_throttles(), "Throttles"),
            ):
                alarms.append(
                    metric.with_(period=Duration.minutes(5), statistic="Sum").create_alarm(
                        self,
                        f"{name}{what}",
                        alarm_description=f"{what} in the {name} function",
                        threshold=1,
                        evaluation_periods=1,
                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
        alarms.append(
            self.api.metric_server_error(period=Duration.minutes(5), statistic="Sum").create_alarm(
                self,
                "Api5xx",
                alarm_description="The HTTP API answered 5xx: a 5xx is a bug",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        for name, table in self.tables.items():
            alarms.append(
                cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name="ThrottledRequests",
                    dimensions_map={"TableName": table.table_name},
                    statistic="Sum",
                    period=Duration.minutes(5),
                ).create_alarm(
                    self,
                    f"{name.capitalize()}Throttles",
                    alarm_description=f"DynamoDB throttled requests on the {name} table",
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for alarm in alarms:
            alarm.add_alarm_action(platform.alarm_action)


_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","method":"$context.httpMethod",'
    '"routeKey":"$context.routeKey","status":"$context.status",'
    '"protocol":"$context.protocol","responseLength":"$context.responseLength",'
    '"latencyMs":"$context.responseLatency","userId":"$context.authorizer.claims.sub",'
    '"authorizerError":"$context.authorizer.error","integrationError":"$context.integrationErrorMessage"}'
)
