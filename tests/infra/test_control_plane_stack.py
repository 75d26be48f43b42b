"""The control plane and identity stacks: auth on every route, grants, the time limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from agent_builder.settings import HANDLER_ENVIRONMENT
from constructs.control_plane_api import COSTLY_ROUTE_THROTTLE, ROUTES
from tests.infra.conftest import ROOT, Synthesized

# The routes that start paid work, and those that call into a customer's account several
# times (assume, probe): each gets the tight throttle.
LAUNCH_ROUTES = ("POST /agents/{agentId}/tests", "POST /agents/{agentId}/deployments")
ACCOUNT_ROUTES = ("POST /aws-account/onboarding", "PUT /aws-account")
# Fetching SAML metadata and creating an IdP; calling IAM Identity Center.
SSO_ROUTES = ("PUT /org/sso", "POST /org/sso/device-authorization")


@pytest.fixture(scope="module")
def template(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.control_plane)


@pytest.fixture(scope="module")
def identity(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.identity)


def statements_of(template: Template, function_logical_prefix: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to the role of one of our functions."""
    resources = template.to_json()["Resources"]
    (role_id,) = [
        k
        for k, v in resources.items()
        if v["Type"] == "AWS::IAM::Role" and k.startswith(f"{function_logical_prefix}Role")
    ]
    return [
        s
        for v in resources.values()
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in v["Properties"]["Roles"]
        for s in v["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }


def test_every_contract_route_exists_and_requires_the_jwt_authorizer(template: Template) -> None:
    routes = template.find_resources("AWS::ApiGatewayV2::Route")
    keys = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}
    assert set(keys) == {route.key for route in ROUTES}
    (authorizer_id,) = template.find_resources("AWS::ApiGatewayV2::Authorizer")
    for key, props in keys.items():
        assert props["AuthorizationType"] == "JWT", key
        assert props["AuthorizerId"] == {"Ref": authorizer_id}, key


def test_org_routes_go_to_the_org_function_and_the_rest_to_the_core_one(
    template: Template,
) -> None:
    integrations = template.find_resources("AWS::ApiGatewayV2::Integration")
    functions = template.find_resources("AWS::Lambda::Function")
    handler_of = {
        logical_id: functions[props["Properties"]["IntegrationUri"]["Fn::GetAtt"][0]]["Properties"][
            "Handler"
        ]
        for logical_id, props in integrations.items()
    }
    for route in template.find_resources("AWS::ApiGatewayV2::Route").values():
        key = route["Properties"]["RouteKey"]
        (reference,) = [
            part["Ref"]
            for part in route["Properties"]["Target"]["Fn::Join"][1]
            if isinstance(part, dict)
        ]
        org = key.split(" ", 1)[1].startswith("/org")
        expected = "handlers.org_api.handler" if org else "handlers.api.handler"
        assert handler_of[reference] == expected, key


def test_only_the_org_function_manages_identity_providers(template: Template) -> None:
    def cognito_actions(function: str) -> set[str]:
        return {a for a in actions_of(statements_of(template, function)) if "cognito" in a}

    assert "cognito-idp:CreateIdentityProvider" in cognito_actions("OrgApi")
    assert cognito_actions("Api") == set()


def test_authorizer_checks_the_user_pool_issuer_and_the_web_client_audience(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {
                "Audience": [
                    Match.object_like({"Fn::ImportValue": Match.string_like_regexp("WebClient")})
                ],
                "Issuer": Match.object_like({"Fn::Join": Match.any_value()}),
            },
        },
    )


def test_stage_throttles_and_writes_json_access_logs(template: Template) -> None:
    (stage,) = template.find_resources("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50
    assert set(props["RouteSettings"]) == set(LAUNCH_ROUTES + ACCOUNT_ROUTES + SSO_ROUTES)
    assert {r.key for r in ROUTES if r.throttle == COSTLY_ROUTE_THROTTLE} == set(
        props["RouteSettings"]
    )
    assert all(v["ThrottlingRateLimit"] == 5 for v in props["RouteSettings"].values())
    assert all(v["ThrottlingBurstLimit"] == 10 for v in props["RouteSettings"].values())
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "routeKey", "status", "userId"} <= set(log_format)


def test_tables_are_on_demand_with_pitr_encryption_and_ttl_where_data_expires(
    template: Template,
) -> None:
    tables = template.find_resources("AWS::DynamoDB::Table")
    names = (
        "ProfilesTable",
        "AgentsTable",
        "RunsTable",
        "UsageTable",
        "AccountsTable",
        "AuditTable",
        "OrganizationsTable",
    )
    assert sorted(k[:-8] for k in tables) == sorted(names)
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, (
            logical_id
        )
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        expires = logical_id.startswith(
            ("RunsTable", "UsageTable", "AuditTable", "OrganizationsTable")
        )
        assert ("TimeToLiveSpecification" in props) == expires, logical_id


def test_table_keys_match_the_runtime_contract(template: Template) -> None:
    def keys(prefix: str) -> list[tuple[str, str]]:
        (table,) = [
            v
            for k, v in template.find_resources("AWS::DynamoDB::Table").items()
            if k.startswith(prefix)
        ]
        return [(k["AttributeName"], k["KeyType"]) for k in table["Properties"]["KeySchema"]]

    assert keys("ProfilesTable") == [("userId", "HASH")]
    assert keys("AgentsTable") == [("userId", "HASH"), ("agentId", "RANGE")]
    assert keys("RunsTable") == [("runId", "HASH")]
    assert keys("UsageTable") == [("userId", "HASH"), ("period", "RANGE")]
    assert keys("AccountsTable") == [("userId", "HASH")]
    assert keys("AuditTable") == [("scope", "HASH"), ("eventId", "RANGE")]
    assert keys("OrganizationsTable") == [("organizationId", "HASH"), ("item", "RANGE")]
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": "byUser",
                        "KeySchema": [
                            {"AttributeName": "userId", "KeyType": "HASH"},
                            {"AttributeName": "createdAt", "KeyType": "RANGE"},
                        ],
                    }
                ),
                Match.object_like(
                    {
                        "IndexName": "byOrganization",
                        "KeySchema": [
                            {"AttributeName": "organizationId", "KeyType": "HASH"},
                            {"AttributeName": "createdAt", "KeyType": "RANGE"},
                        ],
                    }
                ),
            ]
        },
    )
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TimeToLiveSpecification": {"AttributeName": "purgeAt", "Enabled": True},
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": "byInvitation",
                        "KeySchema": [{"AttributeName": "invitationId", "KeyType": "HASH"}],
                    }
                )
            ],
        },
    )


def test_functions_are_arm64_on_the_newest_python_with_tracing_and_the_powertools_layer(
    template: Template,
) -> None:
    functions = {
        k: v
        for k, v in template.find_resources("AWS::Lambda::Function").items()
        if not k.startswith("Custom")
    }
    # api, org api, task events, sweeper, registration, two sign-up triggers, budget switch
    assert len(functions) == 8
    for logical_id, fn in functions.items():
        props = fn["Properties"]
        assert props["Architectures"] == ["arm64"], logical_id
        assert props["Runtime"] == "python3.14", logical_id
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        ((layer,),) = [props["Layers"]]
        assert layer["Ref"].startswith("SsmParameterValueawsservicepowertoolspython"), logical_id
    # The layer ARN is AWS's public parameter for exactly the pinned Powertools version.
    pinned = next(
        line.split("==")[1]
        for line in (ROOT / "lambda_src" / "requirements.txt").read_text().splitlines()
        if line.startswith("aws-lambda-powertools==")
    )
    params = template.to_json()["Parameters"]
    assert [p["Default"] for p in params.values() if "powertools" in p.get("Default", "")] == [
        f"/aws/service/powertools/python/arm64/python3.14/{pinned}"
    ]


def test_api_function_may_launch_only_the_runner_on_the_test_cluster(template: Template) -> None:
    statements = statements_of(template, "Api")
    run_task = [s for s in statements if s["Action"] == "ecs:RunTask"]
    assert len(run_task) == 1
    assert run_task[0]["Resource"]["Ref"].startswith("RunnerTaskDefinition")
    assert "ecs:cluster" in run_task[0]["Condition"]["ArnEquals"]
    pass_role = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role and all("Condition" in s for s in pass_role)
    # StopTask only to stop a task whose time limit could not be scheduled, on this cluster.
    (stop,) = [s for s in statements if s["Action"] == "ecs:StopTask"]
    assert "ecs:cluster" in stop["Condition"]["ArnEquals"]
    assert not any(a.endswith("*") and a.split(":")[1] == "*" for a in actions_of(statements))


def test_functions_get_item_level_table_actions_only(template: Template) -> None:
    for fn in ("Api", "TaskEvents", "Registration"):
        dynamo = {a for a in actions_of(statements_of(template, fn)) if a.startswith("dynamodb:")}
        assert dynamo, fn
        assert not dynamo & {
            "dynamodb:Scan",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteTable",
            "dynamodb:*",
        }, fn
    assert not {
        a for a in actions_of(statements_of(template, "Sweeper")) if a.startswith("dynamodb:")
    }


def _table_refs(resource: Any) -> set[str]:
    """The logical ids of the tables a statement's resources name (with their indexes)."""
    found = set()
    for item in resource if isinstance(resource, list) else [resource]:
        text = str(item)
        found |= {
            name
            for name in (
                "Profiles",
                "Agents",
                "Runs",
                "Usage",
                "Accounts",
                "Audit",
                "Organizations",
            )
            if f"{name}Table" in text
        }
    return found


def test_api_function_batch_reads_only_profiles_and_agents(template: Template) -> None:
    batch = [s for s in statements_of(template, "Api") if s["Action"] == "dynamodb:BatchGetItem"]
    assert [_table_refs(s["Resource"]) for s in batch] == [{"Profiles", "Agents"}]


def test_api_function_reads_the_organisation_indexes_and_audit_trails(
    template: Template,
) -> None:
    queries = [s for s in statements_of(template, "Api") if s["Action"] == "dynamodb:Query"]
    text = " ".join(str(s["Resource"]) for s in queries)
    assert "/index/byInvitation" in text and "/index/byOrganization" in text
    assert "Audit" in set().union(*(_table_refs(s["Resource"]) for s in queries))
    writes = [
        s
        for s in statements_of(template, "Api")
        if isinstance(s["Action"], list)
        and "dynamodb:TransactWriteItems" not in s["Action"]
        and "dynamodb:DeleteItem" in s["Action"]
    ]
    assert any("Organizations" in _table_refs(s["Resource"]) for s in writes)
    # The audit trail is appended to and read, never changed.
    for statement in statements_of(template, "Api"):
        if _table_refs(statement["Resource"]) == {"Audit"}:
            assert statement["Action"] in ("dynamodb:PutItem", "dynamodb:Query"), statement


def test_api_function_reads_only_runner_log_streams(template: Template) -> None:
    logs = [s for s in statements_of(template, "Api") if str(s["Action"]).startswith("logs:Get")]
    assert [s["Action"] for s in logs] == ["logs:GetLogEvents"]
    assert ":log-stream:runs/runner/*" in json.dumps(logs[0]["Resource"])


def test_api_function_writes_only_run_requests_to_the_artifacts_bucket(template: Template) -> None:
    s3_actions = {a for a in actions_of(statements_of(template, "Api")) if a.startswith("s3:")}
    assert s3_actions == {"s3:PutObject"}


def test_task_events_and_sweeper_cannot_launch_tasks(template: Template) -> None:
    for fn in ("TaskEvents", "Sweeper"):
        actions = actions_of(statements_of(template, fn))
        assert "ecs:RunTask" not in actions, fn
        assert "iam:PassRole" not in actions, fn
    assert {"ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask"} <= actions_of(
        statements_of(template, "Sweeper")
    )


def test_time_limit_schedules_stop_tasks_through_a_role_only_scheduler_can_assume(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::Scheduler::ScheduleGroup", {"Name": "agent-builder-test-timeouts"}
    )
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        }
                    )
                ]
            }
        },
    )
    env = next(
        iter(
            v
            for k, v in template.find_resources("AWS::Lambda::Function").items()
            if k.startswith("ApiFunction")
        )
    )
    variables = env["Properties"]["Environment"]["Variables"]
    assert variables["MAX_TEST_MINUTES"] == "5"
    assert variables["SCHEDULE_GROUP_NAME"] == "agent-builder-test-timeouts"
    role_id, attribute = variables["SCHEDULER_ROLE_ARN"]["Fn::GetAtt"]
    assert role_id.startswith("TimeLimitStopper") and attribute == "Arn"


def test_sweeper_runs_every_minute_and_task_events_follow_the_test_cluster(
    template: Template,
) -> None:
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)"})
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {"clusterArn": [Match.any_value()]},
            }
        },
    )


def test_runner_task_definition_is_fargate_arm64_with_no_environment_and_awslogs(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Family": "agent-builder-agent-runner",
            "Cpu": "256",
            "Memory": "512",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Name": "runner",
                        "Memory": 512,
                        "ReadonlyRootFilesystem": True,
                        "Environment": Match.absent(),
                        "LogConfiguration": Match.object_like({"LogDriver": "awslogs"}),
                    }
                )
            ],
        },
    )


def test_alarms_cover_function_errors_throttles_api_5xx_and_table_throttles(
    template: Template,
) -> None:
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    metrics = sorted(
        (a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) for a in alarms
    )
    # Not the pre sign-up trigger's: it refuses sign-ups by raising.
    assert metrics.count(("AWS/Lambda", "Errors")) == 7
    # Throttles: one alarm for the account's Lambda throttles (no function dimension).
    (throttles,) = [
        a["Properties"] for a in alarms if a["Properties"].get("MetricName") == "Throttles"
    ]
    assert throttles["Namespace"] == "AWS/Lambda" and "Dimensions" not in throttles
    assert metrics.count(("AWS/ApiGateway", "5xx")) == 1
    assert metrics.count(("AWS/DynamoDB", "ThrottledRequests")) == 7
    assert all(a["Properties"]["AlarmActions"] for a in alarms)


def test_user_pool_uses_email_sign_in_strong_passwords_and_the_lite_plan(
    identity: Template,
) -> None:
    identity.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "UsernameAttributes": ["email"],
            "UserPoolTier": "LITE",
            "Policies": {
                "PasswordPolicy": Match.object_like(
                    {
                        "MinimumLength": 12,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                )
            },
        },
    )


def test_web_client_uses_code_flow_without_secret_and_console_callbacks(
    identity: Template,
) -> None:
    """With no productionDomain, the console's CloudFront domain is the only origin."""
    console = {
        "Fn::Join": [
            "",
            [
                "https://",
                {"Fn::ImportValue": Match.string_like_regexp("web-hosting:.*DomainName")},
                "/",
            ],
        ]
    }
    identity.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "AllowedOAuthFlows": ["code"],
            "GenerateSecret": False,
            "CallbackURLs": [console],
            "LogoutURLs": [console],
            "SupportedIdentityProviders": ["COGNITO"],
        },
    )


def test_production_domain_is_a_second_callback_and_cors_origin(synth: Any) -> None:
    app: Synthesized = synth(productionDomain="https://app.agent-builder.example.com")
    client = app.template(app.platform.identity).find_resources("AWS::Cognito::UserPoolClient")
    (properties,) = [r["Properties"] for r in client.values()]
    assert properties["CallbackURLs"][1] == "https://app.agent-builder.example.com/"
    assert properties["LogoutURLs"][1] == "https://app.agent-builder.example.com/"
    apis = app.template(app.platform.control_plane).find_resources("AWS::ApiGatewayV2::Api")
    (api,) = apis.values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"][1] == "https://app.agent-builder.example.com"
    assert len(cors["AllowOrigins"]) == 2
    assert cors["ExposeHeaders"] == ["Retry-After"]


def test_retain_data_keeps_tables_and_user_pool(synth: Any) -> None:
    app: Synthesized = synth(retainData=True)
    for stack, types in (
        (app.platform.control_plane, {"AWS::DynamoDB::Table"}),
        (app.platform.identity, {"AWS::Cognito::UserPool"}),
    ):
        resources = app.template(stack).to_json()["Resources"].values()
        kept = [r for r in resources if r["Type"] in types]
        assert kept and all(r["DeletionPolicy"] == "Retain" for r in kept)


def test_default_config_retains_nothing_in_any_stack(default_app: Synthesized) -> None:
    for path in default_app.template_files():
        for logical_id, resource in json.loads(path.read_text())["Resources"].items():
            assert resource.get("DeletionPolicy", "Delete") == "Delete", (path.name, logical_id)


def test_launcher_role_may_only_assume_customer_deployer_roles(template: Template) -> None:
    resources = template.to_json()["Resources"]
    (launcher_id,) = [
        k
        for k, v in resources.items()
        if v["Type"] == "AWS::IAM::Role"
        and v["Properties"].get("RoleName") == "agent-builder-launcher"
    ]
    statements = [
        s
        for v in resources.values()
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": launcher_id} in v["Properties"]["Roles"]
        for s in v["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert len(statements) == 1
    assert sorted(statements[0]["Action"]) == ["sts:AssumeRole", "sts:SetSourceIdentity"]
    assert statements[0]["Resource"]["Fn::Join"][1][-1] == ":iam::*:role/agent-builder-deployer"
    trust = resources[launcher_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principals = {
        json.dumps(p, sort_keys=True)
        for s in trust
        for p in (
            [s["Principal"]["AWS"]]
            if not isinstance(s["Principal"]["AWS"], list)
            else s["Principal"]["AWS"]
        )
    }
    assert len(principals) == 2  # the API and registration functions' roles, nothing else
    assert all("Role" in p and ":root" not in p for p in principals)


def test_registration_topic_is_named_for_the_template_and_feeds_the_registration_function(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": "agent-builder-registrations"}
    )
    # Through a queue, never straight to the function (see the throttling test below).
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "sqs", "RawMessageDelivery": False}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": "sns:Publish", "Principal": {"AWS": "*"}})]
                )
            }
        },
    )


def _one(template: Template, resource_type: str, props: dict[str, Any]) -> tuple[str, Any]:
    found = template.find_resources(resource_type, {"Properties": props})
    assert len(found) == 1, (resource_type, props, list(found))
    return next(iter(found.items()))


def test_the_registration_function_is_not_an_unthrottled_public_entry_point(
    template: Template,
) -> None:
    """Anyone may publish to the topic; the function sees its messages only through an
    encrypted queue, at most 2 at a time, and what keeps failing lands in an alarmed DLQ."""
    registrations = {"Ref": Match.string_like_regexp("^Registrations")}
    assert (
        template.find_resources(
            "AWS::SNS::Subscription",
            {"Properties": {"Protocol": "lambda", "TopicArn": registrations}},
        )
        == {}
    )
    queue_id, queue = _one(
        template, "AWS::SQS::Queue", {"QueueName": "agent-builder-registrations"}
    )
    dlq_id, dlq = _one(
        template, "AWS::SQS::Queue", {"QueueName": "agent-builder-registrations-dead-letters"}
    )
    for q in (queue, dlq):
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 3,
    }
    assert queue["Properties"]["VisibilityTimeout"] >= 60  # the function's timeout
    _, subscription = _one(template, "AWS::SNS::Subscription", {"Protocol": "sqs"})
    assert subscription["Properties"]["Endpoint"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    topic = subscription["Properties"]["TopicArn"]
    _, mapping = _one(
        template,
        "AWS::Lambda::EventSourceMapping",
        {"EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]}},
    )
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handlers.registration.handler"}}
    )
    assert mapping["Properties"]["FunctionName"] == {"Ref": next(iter(functions))}
    # Only SNS, only for this topic, may send to the queue.
    _, policy = _one(template, "AWS::SQS::QueuePolicy", {"Queues": [{"Ref": queue_id}]})
    sends = [
        st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Allow"
    ]
    assert sends == [
        {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]
    _, alarm = _one(
        template,
        "AWS::CloudWatch::Alarm",
        {"MetricName": "ApproximateNumberOfMessagesVisible"},
    )
    assert alarm["Properties"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
    ]
    assert alarm["Properties"]["Threshold"] == 1
    assert alarm["Properties"]["AlarmActions"]


def test_only_the_api_and_registration_functions_may_use_the_launcher(template: Template) -> None:
    for fn, allowed in (
        ("Api", True),
        ("Registration", True),
        ("TaskEvents", False),
        ("Sweeper", False),
    ):
        assert ("sts:AssumeRole" in actions_of(statements_of(template, fn))) == allowed, fn


def test_stack_routes_are_exactly_the_documented_api() -> None:
    document = json.loads((ROOT / "dist" / "openapi.json").read_text())
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    assert documented == {(route.method, route.path) for route in ROUTES}


def environments_by_handler(template: Template) -> dict[str, dict[str, Any]]:
    return {
        fn["Properties"]["Handler"]: fn["Properties"].get("Environment", {}).get("Variables", {})
        for fn in template.find_resources("AWS::Lambda::Function").values()
        if str(fn["Properties"].get("Handler", "")).startswith("handlers.")
    }


def test_each_function_gets_exactly_the_environment_its_handler_reads(template: Template) -> None:
    """Across the layers: the stack gives each function what lambda_src's settings parse.

    HANDLER_ENVIRONMENT is derived from the settings groups each handler loads; the
    contract itself is written out once, in tests/runtime/test_settings.py.
    """
    found = environments_by_handler(template)
    # A module's functions: `handler`, or the sign-up triggers' two (one module, one group).
    # The GitHub OIDC bridge and the org-* provider reconcile live in the Identity stack
    # (tests/infra/test_github_bridge.py, test_idp_reconcile.py).
    functions = {"handlers.sign_up": ("pre_sign_up", "post_confirmation")}
    expected = {
        f"{module}.{function}": names
        for module, names in HANDLER_ENVIRONMENT.items()
        if module not in ("handlers.oidc_bridge", "handlers.idp_reconcile")
        for function in functions.get(module, ("handler",))
    }
    assert set(found) == set(expected)
    assert len(expected["handlers.api.handler"]) == 44
    for handler, names in expected.items():
        assert set(found[handler]) == names, handler


def test_functions_share_the_values_of_the_variables_they_have_in_common(
    template: Template,
) -> None:
    found = environments_by_handler(template)
    api = found["handlers.api.handler"]
    seen: dict[str, str] = {}
    for handler, variables in found.items():
        for name, value in variables.items():
            assert seen.setdefault(name, value) == value, (handler, name)
    assert api["POWERTOOLS_SERVICE_NAME"] == "agent-builder-control-plane"
    assert found["handlers.sweeper.handler"]["MAX_TEST_MINUTES"] == "5"


def test_local_response_url_prefix_is_never_set_by_the_stack(template: Template) -> None:
    for handler, variables in environments_by_handler(template).items():
        assert "LOCAL_RESPONSE_URL_PREFIX" not in variables, handler


def test_the_image_copier_reads_and_writes_only_its_two_repositories(template: Template) -> None:
    """cdk-ecr-deployment would give its function ecr:* and s3:GetObject on "*"."""
    functions = template.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "bootstrap", "Runtime": "provided.al2023"}},
    )
    ((_, copier),) = functions.items()
    role_id = copier["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statements, "the copier's role has its own policy"
    platform_repository = {
        "Fn::ImportValue": "agent-builder-platform:ExportsOutputFnGetAttAgentImages3CA69542ArnF626F605"
    }
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        assert all(a.startswith("ecr:") for a in actions), statement
        if "*" in resources:
            assert actions == ["ecr:GetAuthorizationToken"], statement
        elif "ecr:PutImage" in actions:
            assert resources == [platform_repository], statement
        else:
            assert platform_repository in resources and len(resources) == 2, statement
            assert "cdk-hnb659fds-container-assets" in json.dumps(resources), statement
