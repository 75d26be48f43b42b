"""The platform stack: what a platform owner relies on for cost, security and teardown."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Synthesized


@pytest.fixture(scope="module")
def template(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.platform)


@pytest.fixture(scope="module")
def retained(synth: Any) -> Template:
    app: Synthesized = synth(retainData=True)
    return app.template(app.platform.platform)


def resources(template: Template, type_: str) -> dict[str, Any]:
    return template.find_resources(type_)


def test_vpc_has_two_public_subnets_and_no_nat(template: Template) -> None:
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::Subnet", 2)
    template.has_resource_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": True})
    template.has_resource_properties(
        "AWS::EC2::VPC", {"EnableDnsHostnames": True, "EnableDnsSupport": True}
    )


def test_vpc_has_flow_logs_and_a_restricted_default_security_group(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_agent_security_group_allows_https_out_and_nothing_in(template: Template) -> None:
    groups = resources(template, "AWS::EC2::SecurityGroup")
    assert len(groups) == 1
    (group,) = groups.values()
    assert "SecurityGroupIngress" not in group["Properties"]
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to AWS APIs",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


def test_cluster_has_container_insights_and_both_fargate_capacity_providers(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterName": "agent-builder-cluster",
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    )
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"CapacityProviders": Match.array_equals(["FARGATE", "FARGATE_SPOT"])},
    )


def test_repository_scans_on_push_with_immutable_tags_and_a_lifecycle(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "agent-builder/agent-runner",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "IMMUTABLE",
            "LifecyclePolicy": {
                "LifecyclePolicyText": Match.string_like_regexp("imageCountMoreThan")
            },
            "EmptyOnDelete": True,
        },
    )


def test_artifacts_bucket_is_private_encrypted_versioned_logged_and_expiring(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                    }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": "artifacts/",
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [Match.object_like({"Prefix": "runs/", "ExpirationInDays": 30})]
                )
            },
        },
    )


def test_every_bucket_refuses_plain_http(template: Template) -> None:
    policies = resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == len(resources(template, "AWS::S3::Bucket"))
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_agent_task_role_may_only_invoke_allowed_models_and_touch_its_run_objects(
    template: Template,
) -> None:
    roles = {
        k: v
        for k, v in resources(template, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName") == "agent-builder-agent-task"
    }
    (role_id,) = roles
    policies = [
        p
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = sorted(
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "s3:GetObject",
        "s3:PutObject",
    ]
    bedrock = next(s for s in statements if "bedrock:InvokeModel" in s["Action"])
    model_arns = [r["Fn::Join"][1][-1] for r in bedrock["Resource"]]
    assert sorted(model_arns) == sorted(
        f"::foundation-model/{m}"
        for m in (
            "amazon.nova-micro-v1:0",
            "amazon.nova-lite-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
        )
    )
    s3_resources = [
        str(s["Resource"])
        for s in statements
        if isinstance(s["Action"], str) and s["Action"] in ("s3:GetObject", "s3:PutObject")
    ]
    assert any("/runs/*/request.json" in r for r in s3_resources)
    assert any("/runs/*/result.json" in r for r in s3_resources)
    assert all(s.get("Effect") == "Allow" and s["Resource"] != "*" for s in statements)


def test_task_roles_trust_only_ecs_tasks(template: Template) -> None:
    for name in ("agent-builder-agent-task", "agent-builder-task-execution"):
        template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "RoleName": name,
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                        }
                    ]
                },
            },
        )


def test_agent_log_group_has_retention_and_the_prefixed_name(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/agent-builder/agent-runs", "RetentionInDays": 30}
    )


def test_alarm_topic_with_optional_email(template: Template, synth: Any) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"TopicName": "agent-builder-alarms"})
    template.resource_count_is("AWS::SNS::Subscription", 0)
    with_email: Synthesized = synth(alarmEmail="ops@example.com")
    with_email.template(with_email.platform.platform).has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_alarm_fires_above_the_concurrent_test_task_cap(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "ECS/ContainerInsights",
            "MetricName": "TaskCount",
            "Threshold": 20,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [{"Ref": Match.string_like_regexp("^Alarms")}],
        },
    )


def test_monthly_budget_alerts_at_80_percent_actual_and_100_percent_forecast(
    template: Template,
) -> None:
    (budget,) = resources(template, "AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": 50, "Unit": "USD"}
    assert props["Budget"]["TimeUnit"] == "MONTHLY"
    notifications = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"]): n["Subscribers"]
        for n in props["NotificationsWithSubscribers"]
    }
    assert set(notifications) == {("ACTUAL", 80), ("FORECASTED", 100), ("ACTUAL", 100)}
    assert notifications[("ACTUAL", 80)][0]["Address"]["Ref"].startswith("Alarms")


def test_the_budgets_actual_100_percent_alert_goes_to_the_kill_switch_topic(
    template: Template,
) -> None:
    (budget,) = resources(template, "AWS::Budgets::Budget").values()
    [kill] = [
        n
        for n in budget["Properties"]["NotificationsWithSubscribers"]
        if n["Notification"]
        == {
            "NotificationType": "ACTUAL",
            "Threshold": 100,
            "ComparisonOperator": "GREATER_THAN",
            "ThresholdType": "PERCENTAGE",
        }
    ]
    [sns] = [s for s in kill["Subscribers"] if s["SubscriptionType"] == "SNS"]
    (topic_id,) = template.find_resources(
        "AWS::SNS::Topic", {"Properties": {"TopicName": "agent-builder-budget-kill-switch"}}
    )
    assert sns["Address"] == {"Ref": topic_id}
    assert topic_id in budget["DependsOn"]


def test_only_aws_budgets_for_our_budget_may_publish_to_the_kill_switch_topic(
    template: Template,
) -> None:
    (topic_id,) = template.find_resources(
        "AWS::SNS::Topic", {"Properties": {"TopicName": "agent-builder-budget-kill-switch"}}
    )
    [policy] = [
        p
        for p in resources(template, "AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    allows = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert allows == [
        {
            "Sid": "BudgetsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": {"Ref": topic_id},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":budgets::",
                                {"Ref": "AWS::AccountId"},
                                ":budget/agent-builder-monthly",
                            ],
                        ]
                    }
                },
            },
        }
    ]


def test_stack_carries_the_project_tag_for_cloudformation_to_propagate(
    default_app: Synthesized,
) -> None:
    stack = default_app.assembly.get_stack_by_name("agent-builder-platform")
    assert stack.tags == {"Project": "agent-builder"}


def test_every_taggable_resource_is_tagged_with_the_project(template: Template) -> None:
    untagged_types = {
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::Route",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::IAM::Policy",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::Budgets::Budget",
        "AWS::ECS::ClusterCapacityProviderAssociations",
        "AWS::CloudWatch::Alarm",
        "Custom::S3AutoDeleteObjects",
        "Custom::VpcRestrictDefaultSG",
        "AWS::SNS::Subscription",
        "AWS::Lambda::LayerVersion",  # no Tags property (BucketDeployment's AWS CLI layer)
        "Custom::CDKBucketDeployment",
    }
    for logical_id, resource in template.to_json()["Resources"].items():
        if resource["Type"] in untagged_types or "CustomResourceProvider" in logical_id:
            continue  # CDK's own provider resources get the stack tags at deploy
        tags = resource["Properties"].get("Tags", [])
        assert {"Key": "Project", "Value": "agent-builder"} in tags, logical_id


def test_default_config_retains_nothing_on_destroy(template: Template) -> None:
    for logical_id, resource in template.to_json()["Resources"].items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical_id
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete", logical_id
    # access logs, artifacts, published customer templates
    template.resource_count_is("Custom::S3AutoDeleteObjects", 3)


def test_retain_data_keeps_buckets_and_repository(retained: Template) -> None:
    stateful = {"AWS::S3::Bucket", "AWS::ECR::Repository", "AWS::DynamoDB::Table"}
    found = 0
    for logical_id, resource in retained.to_json()["Resources"].items():
        if resource["Type"] in stateful:
            found += 1
            assert resource["DeletionPolicy"] == "Retain", logical_id
    assert found == 4  # access logs, artifacts, customer templates, image repository
    retained.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    retained.has_resource_properties("AWS::ECR::Repository", {"EmptyOnDelete": False})


def test_stateful_logical_ids_are_pinned(template: Template) -> None:
    ids = set(template.to_json()["Resources"])
    assert {"Artifacts82DD59A1", "AccessLogs8B620ECA", "AgentImages3CA69542"} <= ids


def test_customer_task_execution_roles_may_only_pull_the_runner_image(template: Template) -> None:
    (repo,) = template.find_resources("AWS::ECR::Repository").values()
    (statement,) = repo["Properties"]["RepositoryPolicyText"]["Statement"]
    assert statement["Principal"] == {"AWS": "*"}
    assert sorted(statement["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    arn = statement["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert arn == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/agent-builder-task-execution"],
        ]
    }


def test_container_insights_log_group_is_owned_by_the_stack_so_destroy_removes_it(
    template: Template,
) -> None:
    template.has_resource(
        "AWS::Logs::LogGroup",
        {
            "Properties": {
                "LogGroupName": "/aws/ecs/containerinsights/agent-builder-cluster/performance",
                "RetentionInDays": 30,
            },
            "DeletionPolicy": "Delete",
        },
    )
