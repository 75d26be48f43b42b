"""make teardown-plan: exactly what is ours, what the stacks own, and what would be left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scripts.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
teardown_plan = load_script("teardown_plan")

PREFIX = "agent-builder"
REGION = "us-east-1"
ROLE_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
CONTAINER = [{"name": "runner", "image": "busybox", "memory": 512}]


def make_ours_and_look_alikes(session: Any) -> None:
    """One of each kind with our prefix, and look-alikes that must never be touched."""
    logs = session.client("logs")
    for name in (
        "/aws/lambda/agent-builder-platform-CustomS3AutoDeleteObj-abc",
        "/agent-builder/agent-runs",
        "/aws/lambda/agent-builder2-api",
        "/aws/lambda/other-agent-builder-api",
        "/other/agent-builder",
    ):
        logs.create_log_group(logGroupName=name)
    ecs = session.client("ecs")
    for family in ("agent-builder-agent-runner", "agent-builder2-agent-runner"):
        ecs.register_task_definition(family=family, containerDefinitions=CONTAINER)
    inactive = ecs.register_task_definition(
        family="agent-builder-agent-runner", containerDefinitions=CONTAINER
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=inactive)
    ecs.create_cluster(clusterName="agent-builder-cluster")
    ecs.create_cluster(clusterName="agent-builderx-cluster")
    scheduler = session.client("scheduler")
    target = {
        "Arn": "arn:aws:scheduler:::aws-sdk:ecs:stopTask",
        "RoleArn": "arn:aws:iam::123456789012:role/x",
    }
    for group in ("agent-builder-test-timeouts", "agent-builder2-test-timeouts"):
        scheduler.create_schedule_group(Name=group)
        scheduler.create_schedule(
            Name="run-1",
            GroupName=group,
            ScheduleExpression="at(2030-01-01T00:00:00)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
        )
    ecr = session.client("ecr")
    for name in ("agent-builder/agent-runner", "agent-builder2/agent-runner"):
        ecr.create_repository(repositoryName=name)
    s3 = session.client("s3")
    for name in (
        "agent-builder-platform-artifacts-1a2b",
        "agent-builder2-artifacts",
        "other-agent-builder",
    ):
        s3.create_bucket(Bucket=name)
    cognito = session.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="agent-builder-users")["UserPool"]["Id"]
    cognito.create_identity_provider(
        UserPoolId=pool,
        ProviderName="org-acme",
        ProviderType="SAML",
        ProviderDetails={"MetadataURL": "https://idp.example.com/metadata"},
    )
    cognito.create_user_pool(PoolName="agent-builder2-users")
    iam = session.client("iam")
    for name in ("agent-builder-launcher", "agent-builder2-launcher"):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=ROLE_TRUST)
    iam.create_policy(
        PolicyName="agent-builder-extra",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
            }
        ),
    )
    sns = session.client("sns")
    for name in ("agent-builder-registrations", "agent-builder2-registrations"):
        sns.create_topic(Name=name)
    sqs = session.client("sqs")
    for name in ("agent-builder-registrations-dlq", "agent-builder2-queue"):
        sqs.create_queue(QueueName=name)
    dynamodb = session.client("dynamodb")
    for name in ("agent-builder-control-plane-RunsTable-X1", "agent-builder2-runs"):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    kms = session.client("kms")
    for alias in ("alias/agent-builder-sso-tokens", "alias/agent-builder2-sso-tokens"):
        kms.create_alias(AliasName=alias, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    secrets = session.client("secretsmanager")
    for name in ("agent-builder/github-client", "agent-builder2/github-client"):
        secrets.create_secret(Name=name, SecretString="s3cret")
    budgets = session.client("budgets")
    for name in ("agent-builder-monthly", "agent-builder2-monthly"):
        budgets.create_budget(
            AccountId="123456789012",
            Budget={
                "BudgetName": name,
                "BudgetLimit": {"Amount": "50", "Unit": "USD"},
                "TimeUnit": "MONTHLY",
                "BudgetType": "COST",
            },
        )
    cloudwatch = session.client("cloudwatch")
    for name in ("agent-builder-too-many-test-tasks", "agent-builder2-too-many-test-tasks"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="TaskCount",
            Namespace="ECS/ContainerInsights",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=20,
            ComparisonOperator="GreaterThanThreshold",
        )
    ec2 = session.client("ec2")
    for project in (PREFIX, "agent-builder2"):
        ec2.create_vpc(
            CidrBlock="10.0.0.0/16",
            TagSpecifications=[
                {"ResourceType": "vpc", "Tags": [{"Key": "Project", "Value": project}]}
            ],
        )


def names(rows: list[tuple[Any, str]]) -> set[tuple[str, str]]:
    return {(found.kind, found.name) for found, _ in rows}


def test_lists_exactly_our_resources_and_none_of_the_look_alikes(session: Any) -> None:
    make_ours_and_look_alikes(session)
    rows = teardown_plan.plan(prefix=PREFIX, retain_data=False, session=session)
    listed = names(rows)
    expected = {
        ("log group", "/aws/lambda/agent-builder-platform-CustomS3AutoDeleteObj-abc"),
        ("log group", "/agent-builder/agent-runs"),
        ("task definition", "agent-builder-agent-runner:1"),
        ("task definition", "agent-builder-agent-runner:2"),
        ("cluster", "agent-builder-cluster"),
        ("schedule group", "agent-builder-test-timeouts"),
        ("schedule", "agent-builder-test-timeouts/run-1"),
        ("repository", "agent-builder/agent-runner"),
        ("bucket", "agent-builder-platform-artifacts-1a2b"),
        ("user pool", "agent-builder-users"),
        ("identity provider", "agent-builder-users/org-acme"),
        ("role", "agent-builder-launcher"),
        ("policy", "agent-builder-extra"),
        ("topic", "agent-builder-registrations"),
        ("queue", "agent-builder-registrations-dlq"),
        ("table", "agent-builder-control-plane-RunsTable-X1"),
        ("alias", "alias/agent-builder-sso-tokens"),
        ("secret", "agent-builder/github-client"),
        ("budget", "agent-builder-monthly"),
        ("alarm", "agent-builder-too-many-test-tasks"),
    }
    assert expected <= listed
    tagged = [found for found, _ in rows if found.kind == "tagged resource"]
    assert len(tagged) == 1 and tagged[0].name.startswith("vpc/")
    assert listed - expected == {(tagged[0].kind, tagged[0].name)}
    assert all(state == teardown_plan.LEFT_BEHIND for _, state in rows)


def test_the_prefix_must_be_a_whole_leading_segment() -> None:
    ours = teardown_plan.Names(PREFIX).ours
    for name in (
        "agent-builder",
        "agent-builder-api",
        "/agent-builder/runs",
        "alias/agent-builder-x",
        "/aws/lambda/agent-builder-api",
        "agent-builder/agent-runner",
    ):
        assert ours(name), name
    for name in (
        "agent-builder2-api",
        "other-agent-builder",
        "/aws/lambda/xagent-builder-api",
        "agent-buildera",
        "/other/agent-builder",
    ):
        assert not ours(name), name


def test_stack_resources_show_as_owned_and_retained(session: Any) -> None:
    template = {
        "Resources": {
            "Runs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": "/agent-builder/api-access"},
            },
            "Keep": {
                "Type": "AWS::SQS::Queue",
                "DeletionPolicy": "Retain",
                "Properties": {"QueueName": "agent-builder-kept"},
            },
        }
    }
    session.client("cloudformation").create_stack(
        StackName="agent-builder-control-plane", TemplateBody=json.dumps(template)
    )
    session.client("logs").create_log_group(logGroupName="/aws/lambda/agent-builder-stray")
    rows = {
        found.name: state
        for found, state in teardown_plan.plan(prefix=PREFIX, retain_data=False, session=session)
    }
    assert rows["agent-builder-control-plane"] == teardown_plan.LIVE
    assert rows["/agent-builder/api-access"] == "stack agent-builder-control-plane"
    assert rows["agent-builder-kept"] == teardown_plan.RETAINED
    assert rows["/aws/lambda/agent-builder-stray"] == teardown_plan.LEFT_BEHIND


def test_force_refuses_while_a_stack_exists(session: Any) -> None:
    session.client("cloudformation").create_stack(
        StackName="agent-builder-platform",
        TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}),
    )
    session.client("logs").create_log_group(logGroupName="/aws/lambda/agent-builder-stray")
    rows = teardown_plan.plan(prefix=PREFIX, retain_data=False, session=session)
    with pytest.raises(SystemExit, match="stacks still exist: agent-builder-platform"):
        teardown_plan.remove_leftovers(session, rows)
    assert session.client("logs").describe_log_groups()["logGroups"]


def test_force_deletes_only_our_runtime_leftovers(session: Any) -> None:
    make_ours_and_look_alikes(session)
    rows = teardown_plan.plan(prefix=PREFIX, retain_data=False, session=session)
    deleted = teardown_plan.remove_leftovers(session, rows)
    assert {f.kind for f in deleted} == {
        "log group",
        "task definition",
        "schedule",
        "schedule group",
    }

    after = names(teardown_plan.plan(prefix=PREFIX, retain_data=False, session=session))
    assert not {kind for kind, _ in after} & {
        "log group",
        "task definition",
        "schedule",
        "schedule group",
    }
    remaining_logs = {
        g["logGroupName"] for g in session.client("logs").describe_log_groups()["logGroups"]
    }
    assert remaining_logs == {
        "/aws/lambda/agent-builder2-api",
        "/aws/lambda/other-agent-builder-api",
        "/other/agent-builder",
    }
    scheduler = session.client("scheduler")
    assert [
        g["Name"]
        for g in scheduler.list_schedule_groups()["ScheduleGroups"]
        if "agent" in g["Name"]
    ] == ["agent-builder2-test-timeouts"]
    families = session.client("ecs").list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
    assert [arn.rsplit("/", 1)[-1] for arn in families] == ["agent-builder2-agent-runner:1"]
    # What --force may not delete is still reported, so `make destroy` fails on it.
    assert ("role", "agent-builder-launcher") in after


def test_retain_data_expects_the_retained_kinds_to_remain(session: Any) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="agent-builder-platform-artifacts-1a2b")
    kept = teardown_plan.plan(prefix=PREFIX, retain_data=True, session=session)
    assert teardown_plan.unexpected(kept) == []
    dropped = teardown_plan.plan(prefix=PREFIX, retain_data=False, session=session)
    assert [f.name for f, _ in teardown_plan.unexpected(dropped)] == [
        "agent-builder-platform-artifacts-1a2b"
    ]


def test_the_dry_run_deletes_nothing(session: Any, capsys: pytest.CaptureFixture[str]) -> None:
    helper = "/aws/lambda/agent-builder-platform-CustomS3AutoDeleteObj-abc"
    session.client("logs").create_log_group(logGroupName=helper)
    assert teardown_plan.main([]) == 0
    assert helper in capsys.readouterr().out
    groups = session.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [helper]


def test_force_through_the_command_line_cleans_up_and_then_checks(
    session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    session.client("logs").create_log_group(
        logGroupName="/aws/lambda/agent-builder-control-plane-CustomCDKECRDeployment-XyZ"
    )
    session.client("logs").create_log_group(logGroupName="/aws/lambda/other-platform-Thing-1")
    assert teardown_plan.main(["--force"]) == 0
    groups = session.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/lambda/other-platform-Thing-1"]
    assert "nothing left behind" in capsys.readouterr().out


def test_an_empty_account_has_nothing_of_ours(
    session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert teardown_plan.main(["--expect-clean"]) == 0
    out = capsys.readouterr().out
    assert "nothing of ours" in out and "nothing left behind" in out


def test_expect_clean_fails_and_names_what_remains(
    session: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    session.client("iam").create_role(
        RoleName="agent-builder-launcher", AssumeRolePolicyDocument=ROLE_TRUST
    )
    assert teardown_plan.main(["--expect-clean"]) == 1
    assert "iam role agent-builder-launcher (left behind)" in capsys.readouterr().err


def test_without_a_region_it_says_which_variable_to_set() -> None:
    with pytest.raises(SystemExit, match="AWS_REGION"):
        teardown_plan.region_from_env({})
    assert teardown_plan.region_from_env({"AWS_DEFAULT_REGION": "eu-west-1"}) == "eu-west-1"
