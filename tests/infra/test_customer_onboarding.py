"""The customer onboarding template: what a customer's security team will read line by line."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from constructs.deployer_role import (
    COST_ALLOCATION_TAG_KEYS,
    RUN_TASK_TAG_KEYS,
)
from stacks.config import PlatformConfig
from stacks.customer_onboarding_stack import CustomerOnboardingStack
from stacks.onboarding_parameters import EXTERNAL_ID_PATTERN, REGISTRATION_TOPIC_PATTERN
from stacks.onboarding_templates import (
    ONBOARDING_CONTEXT,
    handed_out,
    render_customer_template,
    render_organization_template,
)
from stacks.organization_onboarding_stack import (
    ORGANIZATION_WORDING,
    TEMPLATE_BODY_LIMIT,
    OrganizationOnboardingStack,
)
from tests.infra.conftest import default_context
from tests.infra.test_quality_gates import LINT_REGIONS, assert_no_nag_findings, run_checkov

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ROOT / "stacks" / "customer_onboarding.lock"
PREFIX = "${ResourcePrefix}"
ACCOUNT_ARN = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
RUNNER_FAMILY = f"{ACCOUNT_ARN}:task-definition/{PREFIX}-agent-runner:*"
CLUSTER_TASKS = f"{ACCOUNT_ARN}:task/{PREFIX}-cluster/*"
# Actions AWS authorises only against Resource "*" (no resource-level permissions).
STAR_ONLY_ACTIONS = {
    "ecs:ListTasks",
    "ecs:DeregisterTaskDefinition",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ecr:GetAuthorizationToken",
}


def text(value: Any) -> Any:
    """An intrinsic as readable text: Ref X -> ${X}, GetAtt X.Y -> ${X.Y}, Joins joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [text(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return "${" + arg + "}"
        if fn == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if fn == "Fn::Join":
            return arg[0].join(str(text(p)) for p in arg[1])
    if isinstance(value, dict):
        return {k: text(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def config() -> PlatformConfig:
    return PlatformConfig.from_context(default_context().get)


@pytest.fixture(scope="module")
def customer_yaml(config: PlatformConfig) -> str:
    """The template as we hand it out (dist/, the lock): whatever the owner's account."""
    return render_customer_template(handed_out(config))


@pytest.fixture(scope="module")
def template(customer_yaml: str) -> dict[str, Any]:
    return yaml.safe_load(customer_yaml)


@pytest.fixture(scope="module")
def organization_yaml(config: PlatformConfig) -> str:
    return render_organization_template(handed_out(config))


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def logical_id(template: dict[str, Any], type_: str, name_suffix: str) -> str:
    """The logical id of the resource of `type_` whose physical name ends with `name_suffix`."""
    name_keys = ("RoleName", "ClusterName", "LogGroupName", "GroupName")
    (found,) = [
        key
        for key, resource in resources_of(template, type_).items()
        if any(
            str(text(resource["Properties"].get(k, ""))).endswith(name_suffix) for k in name_keys
        )
    ]
    return found


def deployer(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((key, role),) = [
        (k, r)
        for k, r in resources_of(template, "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == "agent-builder-deployer"
    ]
    return key, role


def deployer_policies(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The policies attached to the deployer role, by PolicyName."""
    role_id, _ = deployer(template)
    return {
        p["Properties"]["PolicyName"]: p
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    }


def deployer_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statements of the deployer's permissions, by Sid."""
    policy = deployer_policies(template)["agent-builder-deployer-permissions"]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def all_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources_of(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---- item 1: a plain template, launchable as-is ------------------------------------------------


def test_template_carries_no_cdk_artefacts(customer_yaml: str, template: dict[str, Any]) -> None:
    assert "aws:cdk:path" not in customer_yaml
    assert "AWS::CDK::Metadata" not in customer_yaml
    assert "BootstrapVersion" not in customer_yaml
    assert "CheckBootstrapVersion" not in template.get("Rules", {})
    assert "cdk-hnb659fds" not in customer_yaml  # no asset bucket or repository
    assert "AssetParameters" not in customer_yaml
    types = {r["Type"] for r in template["Resources"].values()}
    assert not {t for t in types if t.startswith("AWS::Lambda::")}
    assert {t for t in types if t.startswith("Custom::")} == {"Custom::AgentBuilderRegistration"}
    assert "AWS::CloudFormation::CustomResource" not in types


def test_description_names_the_platform_and_the_template_version(
    template: dict[str, Any], config: PlatformConfig
) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert config.prefix in template["Description"]
    assert f"template version {config.template_version}" in template["Description"]


def test_rendering_is_deterministic(config: PlatformConfig, customer_yaml: str) -> None:
    again = render_customer_template.__wrapped__(handed_out(config))  # type: ignore[attr-defined]
    assert again == customer_yaml


def test_template_reads_top_down_in_cloudformation_section_order(template: dict[str, Any]) -> None:
    assert list(template) == [
        "AWSTemplateFormatVersion",
        "Description",
        "Metadata",
        "Parameters",
        "Rules",
        "Conditions",
        "Resources",
        "Outputs",
    ]


# ---- the deployer role's trust -------------------------------------------------------------------


def test_deployer_role_keeps_the_name_the_platform_launcher_may_assume(
    template: dict[str, Any],
) -> None:
    _, role = deployer(template)
    # A literal, not ResourcePrefix: the launcher may assume only <platform prefix>-deployer.
    assert role["Properties"]["RoleName"] == "agent-builder-deployer"
    assert role["Properties"]["MaxSessionDuration"] == 3600


def test_trust_policy_admits_only_the_launcher_role_with_the_external_id(
    template: dict[str, Any],
) -> None:
    _, role = deployer(template)
    statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    launcher = "arn:${AWS::Partition}:iam::${PlatformAccountId}:role/agent-builder-launcher"
    assert [s["Effect"] for s in statements] == ["Allow", "Allow"]
    for statement in statements:
        assert list(statement["Principal"]) == ["AWS"]
        assert text(statement["Principal"]["AWS"]) == launcher
        assert ":root" not in str(text(statement["Principal"]["AWS"]))
    (assume,) = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert assume["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    (source_identity,) = [s for s in statements if s["Action"] == "sts:SetSourceIdentity"]
    # Setting a source identity never stands alone: AssumeRole (with the External ID) must pass too.
    assert set(source_identity) == {"Action", "Effect", "Principal"}


# ---- every permission statement ------------------------------------------------------------------


def test_every_deployer_permission_is_exactly_as_reviewed(template: dict[str, Any]) -> None:
    cluster = "${" + logical_id(template, "AWS::ECS::Cluster", "-cluster") + ".Arn}"
    execution = "${" + logical_id(template, "AWS::IAM::Role", "-task-execution") + ".Arn}"
    task = "${" + logical_id(template, "AWS::IAM::Role", "-agent-task") + ".Arn}"
    logs = "${" + logical_id(template, "AWS::Logs::LogGroup", "/agent-runs") + ".Arn}"
    on_cluster = {"ArnEquals": {"ecs:cluster": cluster}}
    tagged = {"aws:RequestTag/Project": PREFIX}
    ours = {"aws:ResourceTag/Project": PREFIX}
    # The platform's own run tags, then an organisation's cost-allocation tags.
    run_tags = {
        "aws:TagKeys": [
            "Project",
            "agentId",
            "runId",
            "userId",
            "organization",
            "team",
            "project",
            "user",
            "agent",
            "run",
        ]
    }
    expected = {
        "RunTheRunnerFamilyOnPrefixedCluster": (
            ["ecs:RunTask"],
            [RUNNER_FAMILY],
            {
                **on_cluster,
                "StringEquals": {**tagged, **ours},
                "ForAllValues:StringEquals": run_tags,
                "Null": {"ecs:capacity-provider": "true"},
                "StringEqualsIfExists": {
                    "ecs:enable-execute-command": "false",
                    "ecs:enable-ebs-volumes": "false",
                },
            },
        ),
        "StopAndDescribeTasksOfPrefixedCluster": (
            ["ecs:DescribeTasks", "ecs:StopTask"],
            [CLUSTER_TASKS],
            {**on_cluster, "StringEquals": ours},
        ),
        "ListTasksOfPrefixedCluster": (["ecs:ListTasks"], ["*"], on_cluster),
        "DescribePrefixedCluster": (["ecs:DescribeClusters"], [cluster], None),
        "RegisterTheRunnerFamilyTaggedWithProject": (
            ["ecs:RegisterTaskDefinition"],
            [RUNNER_FAMILY],
            {
                "StringEquals": tagged,
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["Project"],
                    "ecs:compute-compatibility": ["FARGATE"],
                },
                "Null": {"ecs:compute-compatibility": "false"},
                "StringEqualsIfExists": {"ecs:privileged": "false"},
                # cdk.json's testTaskCpu / testTaskMemoryMiB: what CUSTOMER_TASK_* send.
                "NumericLessThanEquals": {"ecs:task-cpu": "256", "ecs:task-memory": "512"},
            },
        ),
        "TagOnlyWhatItCreates": (
            ["ecs:TagResource"],
            [RUNNER_FAMILY, CLUSTER_TASKS],
            {
                "StringEquals": {
                    "ecs:CreateAction": ["RegisterTaskDefinition", "RunTask"],
                    **tagged,
                },
                "ForAllValues:StringEquals": run_tags,
            },
        ),
        "DeregisterTaskDefinitions": (["ecs:DeregisterTaskDefinition"], ["*"], None),
        "DeleteRunnerRevisionsItRegistered": (
            ["ecs:DeleteTaskDefinitions"],
            [RUNNER_FAMILY],
            {"StringEquals": ours},
        ),
        "PassOnlyAgentTaskRolesToEcsTasks": (
            ["iam:PassRole"],
            [execution, task],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
        "ReadAgentRunLogs": (
            ["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"],
            [logs],
            None,
        ),
        "DescribeNetworkForValidation": (
            ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"],
            ["*"],
            None,
        ),
        # The platform believes a registration Delete only once this stack says so.
        "ConfirmOwnStackDeletion": (["cloudformation:DescribeStacks"], ["${AWS::StackId}"], None),
    }
    statements = deployer_statements(template)
    assert set(statements) == set(expected)
    for sid, (actions, resources, condition) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow", sid
        assert as_list(statement["Action"]) == actions, sid
        assert text(as_list(statement["Resource"])) == resources, sid
        assert text(statement.get("Condition")) == condition, sid


def test_no_statement_anywhere_grants_a_wildcard_action(template: dict[str, Any]) -> None:
    for statement in all_statements(template):
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
    assert "NotAction" not in str(template) and "NotResource" not in str(template)


def test_star_resources_only_for_actions_aws_cannot_scope(template: dict[str, Any]) -> None:
    # Allow statements: a Deny on "*" takes away, it grants nothing.
    for statement in all_statements(template):
        if statement["Effect"] == "Allow" and "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= STAR_ONLY_ACTIONS, statement


def test_pass_role_is_never_unscoped(template: dict[str, Any]) -> None:
    execution = logical_id(template, "AWS::IAM::Role", "-task-execution")
    task = logical_id(template, "AWS::IAM::Role", "-agent-task")
    passing = [s for s in all_statements(template) if "iam:PassRole" in as_list(s["Action"])]
    assert len(passing) == 1
    (statement,) = passing
    assert statement["Resource"] == [
        {"Fn::GetAtt": [execution, "Arn"]},
        {"Fn::GetAtt": [task, "Arn"]},
    ]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_scoped_deployer_resources_stay_within_the_prefix(template: dict[str, Any]) -> None:
    prefixed = {
        logical_id(template, "AWS::ECS::Cluster", "-cluster"),
        logical_id(template, "AWS::IAM::Role", "-task-execution"),
        logical_id(template, "AWS::IAM::Role", "-agent-task"),
        logical_id(template, "AWS::Logs::LogGroup", "/agent-runs"),
    }
    for statement in deployer_statements(template).values():
        for resource in as_list(statement["Resource"]):
            if resource == "*" or resource == {"Ref": "AWS::StackId"}:  # this stack only
                continue
            if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                assert resource["Fn::GetAtt"][0] in prefixed, statement["Sid"]
            else:
                assert f"/{PREFIX}-" in text(resource), statement["Sid"]


# ---- an organisation's cost-allocation tags and allowed regions ---------------------------------


@pytest.fixture(scope="module")
def assertable(template: dict[str, Any]) -> Template:
    return Template.from_json(template)


def launched_policies(template: dict[str, Any], allowed_regions: str) -> dict[str, Any]:
    """The deployer's policies CloudFormation creates with this AllowedRegions value: a
    resource under a Condition exists only when it holds (CommaDelimitedList "" is [""])."""
    regions = allowed_regions.split(",")

    def holds(expression: Any) -> Any:
        if isinstance(expression, list):
            return [holds(e) for e in expression]
        if not isinstance(expression, dict):
            return expression
        ((fn, arg),) = expression.items()
        if fn == "Ref" and arg == "AllowedRegions":
            return regions
        if fn == "Fn::Join":
            separator, items = holds(arg)
            return separator.join(items)
        if fn == "Fn::Equals":
            left, right = holds(arg)
            return left == right
        if fn == "Fn::Not":
            return not holds(arg[0])
        raise AssertionError(f"unexpected {fn} in the region condition")

    conditions = template["Conditions"]
    return {
        name: policy
        for name, policy in deployer_policies(template).items()
        if "Condition" not in policy or holds(conditions[policy["Condition"]])
    }


def test_the_six_cost_allocation_tag_keys_are_the_ones_the_runtime_tags_tasks_with() -> None:
    from agent_builder.runs import cost_allocation_tags

    run = {"organizationId": "org-1", "userId": "user-1", "agentId": "agent-1", "runId": "run-1"}
    agent = {"team": "payments", "project": "checkout"}

    assert tuple(cost_allocation_tags(run, agent)) == COST_ALLOCATION_TAG_KEYS
    assert not set(COST_ALLOCATION_TAG_KEYS) & set(RUN_TASK_TAG_KEYS)


@pytest.mark.parametrize("sid", ["RunTheRunnerFamilyOnPrefixedCluster", "TagOnlyWhatItCreates"])
def test_tasks_may_carry_exactly_the_run_and_cost_allocation_tag_keys(
    assertable: Template, sid: str
) -> None:
    # An exact list (not a wildcard, not a prefix): any other tag key is refused.
    assertable.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyName": "agent-builder-deployer-permissions",
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": sid,
                                "Condition": Match.object_like(
                                    {
                                        "ForAllValues:StringEquals": {
                                            "aws:TagKeys": [
                                                *RUN_TASK_TAG_KEYS,
                                                *COST_ALLOCATION_TAG_KEYS,
                                            ]
                                        }
                                    }
                                ),
                            }
                        )
                    ]
                )
            },
        },
    )


def test_task_definitions_are_still_registered_with_the_project_tag_alone(
    assertable: Template,
) -> None:
    assertable.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "RegisterTheRunnerFamilyTaggedWithProject",
                                "Condition": Match.object_like(
                                    {
                                        "ForAllValues:StringEquals": Match.object_like(
                                            {"aws:TagKeys": ["Project"]}
                                        )
                                    }
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_allowed_regions_is_an_optional_list_of_region_names(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AllowedRegions"]
    assert parameter["Type"] == "CommaDelimitedList"
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("", "eu-west-1", "ap-southeast-2", "us-gov-west-1"):
        assert pattern.fullmatch(good), good
    for bad in ("*", "eu-*", "EU-WEST-1", "eu-west", "eu-west-1 "):
        assert not pattern.fullmatch(bad), bad
    assert template["Conditions"]["RestrictRegions"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "AllowedRegions"}]}, ""]}]
    }


def test_with_allowed_regions_one_deny_refuses_every_regional_action_elsewhere(
    assertable: Template, template: dict[str, Any]
) -> None:
    allowed = {a for s in deployer_statements(template).values() for a in as_list(s["Action"])}
    # IAM is global (its requests are not made in the platform's region): PassRole stays out,
    # and takes effect only through RunTask and RegisterTaskDefinition, which are denied.
    regional = sorted(allowed - {"iam:PassRole"})
    assert {"ecs:RunTask", "ecs:RegisterTaskDefinition", "logs:GetLogEvents"} <= set(regional)
    role_id, _ = deployer(template)

    assertable.has_resource(
        "AWS::IAM::Policy",
        {
            "Condition": "RestrictRegions",
            "Properties": {
                "PolicyName": "agent-builder-deployer-allowed-regions",
                "Roles": [{"Ref": role_id}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "NothingOutsideAllowedRegions",
                            "Effect": "Deny",
                            "Action": regional,
                            "Resource": "*",
                            "Condition": {
                                "StringNotEquals": {
                                    "aws:RequestedRegion": {"Ref": "AllowedRegions"}
                                }
                            },
                        }
                    ],
                },
            },
        },
    )


def test_the_deployers_permissions_do_not_depend_on_allowed_regions(
    template: dict[str, Any],
) -> None:
    permissions = deployer_policies(template)["agent-builder-deployer-permissions"]
    assert "Condition" not in permissions
    assert "AllowedRegions" not in json.dumps(permissions)
    assert "RestrictRegions" not in json.dumps(permissions)


def test_without_allowed_regions_the_deployer_has_its_permissions_alone(
    template: dict[str, Any],
) -> None:
    assert set(launched_policies(template, "")) == {"agent-builder-deployer-permissions"}


def test_with_allowed_regions_the_deployer_gets_the_deny_beside_its_permissions(
    template: dict[str, Any],
) -> None:
    assert set(launched_policies(template, "eu-west-1,eu-central-1")) == {
        "agent-builder-deployer-permissions",
        "agent-builder-deployer-allowed-regions",
    }
    assert set(launched_policies(template, "eu-west-1")) == set(
        launched_policies(template, "eu-west-1,eu-central-1")
    )


def test_prefixed_resources_carry_the_resource_prefix(template: dict[str, Any]) -> None:
    assert logical_id(template, "AWS::ECS::Cluster", "-cluster")
    for type_, suffix in (
        ("AWS::ECS::Cluster", "-cluster"),
        ("AWS::IAM::Role", "-task-execution"),
        ("AWS::IAM::Role", "-agent-task"),
        ("AWS::Logs::LogGroup", "/agent-runs"),
    ):
        resource = template["Resources"][logical_id(template, type_, suffix)]
        names = [v for k, v in resource["Properties"].items() if k.endswith("Name")]
        assert any(str(text(n)).startswith((PREFIX, f"/{PREFIX}/")) for n in names), type_


def test_agent_task_role_may_only_invoke_bedrock_models(template: dict[str, Any]) -> None:
    task = logical_id(template, "AWS::IAM::Role", "-agent-task")
    (policy,) = [
        p
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": task}]
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    for arn in text(statement["Resource"]):
        assert ":bedrock:" in arn and "foundation-model/" in arn and not arn.endswith("*")


def test_execution_role_pulls_only_the_platform_runner_image_and_writes_run_logs(
    template: dict[str, Any],
) -> None:
    execution = logical_id(template, "AWS::IAM::Role", "-task-execution")
    logs = logical_id(template, "AWS::Logs::LogGroup", "/agent-runs")
    (policy,) = [
        p
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": execution}]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_actions = {tuple(as_list(s["Action"])): text(s["Resource"]) for s in statements}
    assert by_actions == {
        ("logs:CreateLogStream", "logs:PutLogEvents"): "${" + logs + ".Arn}",
        ("ecr:GetAuthorizationToken",): "*",
        (
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ): "arn:${AWS::Partition}:ecr:*:${PlatformAccountId}:repository/agent-builder/agent-runner",
    }


# ---- the rest of item 4: cluster, network, logs ---------------------------------------------------


def test_cluster_has_container_insights_and_both_fargate_capacity_providers(
    template: dict[str, Any],
) -> None:
    cluster_id = logical_id(template, "AWS::ECS::Cluster", "-cluster")
    cluster = template["Resources"][cluster_id]["Properties"]
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]
    (association,) = resources_of(
        template, "AWS::ECS::ClusterCapacityProviderAssociations"
    ).values()
    assert association["Properties"]["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert association["Properties"]["Cluster"] == {"Ref": cluster_id}


def test_new_network_exists_only_without_an_existing_vpc_and_has_no_nat(
    template: dict[str, Any],
) -> None:
    assert template["Conditions"]["CreateVpc"] == {"Fn::Equals": [{"Ref": "VpcId"}, ""]}
    network_types = {
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::FlowLog",
    }
    network = [r for r in template["Resources"].values() if r["Type"] in network_types]
    assert len(resources_of(template, "AWS::EC2::Subnet")) == 2
    assert all(r.get("Condition") == "CreateVpc" for r in network)
    assert not resources_of(template, "AWS::EC2::NatGateway")
    for subnet in resources_of(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is True


def test_security_group_is_egress_only_in_the_new_or_the_given_vpc(
    template: dict[str, Any],
) -> None:
    ((_, group),) = resources_of(template, "AWS::EC2::SecurityGroup").items()
    assert "Condition" not in group
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
    (vpc_id,) = resources_of(template, "AWS::EC2::VPC")
    assert group["Properties"]["VpcId"] == {
        "Fn::If": ["CreateVpc", {"Ref": vpc_id}, {"Ref": "VpcId"}]
    }


def test_log_groups_have_retention_and_nothing_is_retained(template: dict[str, Any]) -> None:
    for group in resources_of(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 30
    for key, resource in template["Resources"].items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", key
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete", key


def test_every_resource_is_tagged_with_the_resource_prefix(template: dict[str, Any]) -> None:
    taggable = [
        r
        for r in template["Resources"].values()
        if r["Type"]
        in {"AWS::EC2::VPC", "AWS::EC2::SecurityGroup", "AWS::ECS::Cluster", "AWS::IAM::Role"}
    ]
    for resource in taggable:
        assert {"Key": "Project", "Value": {"Ref": "ResourcePrefix"}} in resource["Properties"][
            "Tags"
        ]


# ---- parameters (item 3) -----------------------------------------------------------------------


def test_external_id_is_required_and_pattern_checked(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ExternalId"]
    assert "Default" not in parameter
    assert parameter["MinLength"] == 16
    assert parameter["MaxLength"] == 1224
    pattern = re.compile(parameter["AllowedPattern"])
    assert parameter["AllowedPattern"] == EXTERNAL_ID_PATTERN
    for good in ("a1B2c3D4e5F6g7H8", "abc+=,.@:/-_0123456789"):
        assert pattern.fullmatch(good)
    for bad in ("has space in it 123", "semicolon;0123456789", 'quote"0123456789'):
        assert not pattern.fullmatch(bad)


def test_the_external_id_and_the_registration_token_are_no_echo(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    assert parameters["ExternalId"]["NoEcho"] is True
    token = parameters["RegistrationToken"]
    assert token["NoEcho"] is True
    assert token["Default"] == ""  # registration off needs none
    pattern = re.compile(token["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("a" * 43)
    assert not pattern.fullmatch("a" * 42) and not pattern.fullmatch("a" * 42 + "!")
    # Neither is ever repeated where NoEcho does not mask it.
    for output in template["Outputs"].values():
        assert "ExternalId" not in json.dumps(output)
        assert "RegistrationToken" not in json.dumps(output)
    assert "RegistrationToken" not in json.dumps(template.get("Metadata", {}).get("Other", {}))


def test_the_registration_carries_the_token(template: dict[str, Any]) -> None:
    [registration] = resources_of(template, "Custom::AgentBuilderRegistration").values()
    assert registration["Properties"]["RegistrationToken"] == {"Ref": "RegistrationToken"}


def test_resource_prefix_defaults_to_the_platform_prefix(
    template: dict[str, Any], config: PlatformConfig
) -> None:
    parameter = template["Parameters"]["ResourcePrefix"]
    assert parameter["Default"] == config.prefix == "agent-builder"
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("agent-builder") and pattern.fullmatch("acme-agents")
    assert not pattern.fullmatch("Agent_Builder") and not pattern.fullmatch("x" * 21)


def test_platform_account_is_required_when_config_has_none() -> None:
    config = PlatformConfig.from_context((default_context() | {"platformAccountId": ""}).get)
    assert config.platform_account_id is None
    template = yaml.safe_load(render_customer_template(config))
    parameter = template["Parameters"]["PlatformAccountId"]
    assert "Default" not in parameter
    assert parameter["AllowedPattern"] == "^[0-9]{12}$"


def test_the_handed_out_template_never_carries_the_owners_account() -> None:
    config = PlatformConfig.from_context(
        (default_context() | {"platformAccountId": "222233334444"}).get
    )
    template = yaml.safe_load(render_customer_template(handed_out(config)))
    assert "Default" not in template["Parameters"]["PlatformAccountId"]


def test_platform_account_from_config_becomes_the_default() -> None:
    config = PlatformConfig.from_context(
        (default_context() | {"platformAccountId": "222233334444"}).get
    )
    template = yaml.safe_load(render_customer_template(config))
    assert template["Parameters"]["PlatformAccountId"]["Default"] == "222233334444"


def test_existing_vpc_and_subnets_are_optional(template: dict[str, Any]) -> None:
    assert template["Parameters"]["VpcId"]["Default"] == ""
    assert template["Parameters"]["SubnetIds"] == template["Parameters"]["SubnetIds"] | {
        "Type": "CommaDelimitedList",
        "Default": "",
    }
    assert set(template["Rules"]) == {"ExistingVpcNeedsSubnets", "SubnetsNeedTheirVpc"}


def test_registration_topic_defaults_to_the_platform_topic_and_empty_skips(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["RegistrationTopicArn"]
    assert parameter["Default"] == "default"
    pattern = re.compile(parameter["AllowedPattern"])
    assert parameter["AllowedPattern"] == REGISTRATION_TOPIC_PATTERN
    for good in ("", "default", "arn:aws:sns:eu-west-1:123456789012:agent-builder-registrations"):
        assert pattern.fullmatch(good)
    assert not pattern.fullmatch("https://example.com/hook")
    assert template["Conditions"]["Register"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RegistrationTopicArn"}, ""]}]
    }


# ---- registration and outputs (items 4 and 5) -----------------------------------------------------


def test_registration_custom_resource_reports_the_connection_to_the_topic(
    template: dict[str, Any], config: PlatformConfig
) -> None:
    (registration,) = [
        r for r in template["Resources"].values() if r["Type"] == "Custom::AgentBuilderRegistration"
    ]
    assert registration["Condition"] == "Register"
    properties = registration["Properties"]
    token = properties["ServiceToken"]["Fn::If"]
    assert token[0] == "UsePlatformTopic"
    assert (
        text(token[1])
        == "arn:${AWS::Partition}:sns:${AWS::Region}:${PlatformAccountId}:agent-builder-registrations"
    )
    assert token[2] == {"Ref": "RegistrationTopicArn"}
    assert {
        "RoleArn",
        "ExternalId",
        "AccountId",
        "Region",
        "ClusterArn",
        "SubnetIds",
        "SecurityGroupId",
        "TemplateVersion",
    } <= set(properties)
    assert properties["TemplateVersion"] == config.template_version
    assert properties["ExternalId"] == {"Ref": "ExternalId"}
    # Deleting the stack when the platform no longer answers fails after 5 minutes, not 1 hour.
    assert properties["ServiceTimeout"] == 300
    # It waits for the deployer's permissions, so the platform can validate them at once.
    permissions = [
        k
        for k, r in resources_of(template, "AWS::IAM::Policy").items()
        if r["Properties"]["PolicyName"] == "agent-builder-deployer-permissions"
    ]
    assert set(permissions) <= set(registration["DependsOn"])


def test_outputs_give_everything_a_pasted_connection_needs(
    template: dict[str, Any], config: PlatformConfig
) -> None:
    outputs = template["Outputs"]
    assert {
        "RoleArn",
        "ClusterArn",
        "SubnetIds",
        "SecurityGroupId",
        "TemplateVersion",
    } <= set(outputs)
    assert outputs["TemplateVersion"]["Value"] == config.template_version
    # The External ID is the customer's to keep from the onboarding answer, not an output.
    assert "ExternalId" not in outputs


# ---- quality gates on the exported templates -------------------------------------------------------


def test_cdk_nag_reports_no_unacknowledged_finding_and_every_acknowledgement_has_a_reason(
    config: PlatformConfig,
) -> None:
    app = cdk.App(context=dict(ONBOARDING_CONTEXT))
    CustomerOnboardingStack(app, "CustomerOnboarding", config=config)
    report = AwsSolutionsChecks().validate_scope(app)
    assert report.violations == [], [v.rule_name for v in report.violations]
    assert_no_nag_findings(report)
    acknowledged = 0
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    acknowledged += 1
                    assert len(str(reason)) >= 60, (construct.node.path, rule)
    assert acknowledged >= 4


def test_cfn_lint_finds_no_error_in_either_exported_template(
    customer_yaml: str, organization_yaml: str
) -> None:
    from cfnlint.api import lint

    for name, body in (("customer", customer_yaml), ("organization", organization_yaml)):
        matches = lint(body, regions=LINT_REGIONS)
        errors = [str(m) for m in matches if m.rule.id.startswith("E")]
        assert errors == [], name


def test_checkov_fails_nothing_in_either_exported_template(
    customer_yaml: str, organization_yaml: str, tmp_path: Path
) -> None:
    (tmp_path / "customer-onboarding.yaml").write_text(customer_yaml)
    (tmp_path / "organization-onboarding.yaml").write_text(organization_yaml)
    result = run_checkov(tmp_path)
    assert [(c["check_id"], c["resource"]) for c in result["failed"]] == []
    assert result["passed"] > 30
    for skipped in result["skipped"]:
        assert len(skipped.get("check_result", {}).get("suppress_comment", "")) >= 40


# ---- versioning (item 6) -------------------------------------------------------------------------


def test_template_changes_only_with_a_new_template_version(
    customer_yaml: str, config: PlatformConfig
) -> None:
    from scripts.export_templates import UPDATE_LOCK_COMMAND, lock_line

    locked = LOCK_FILE.read_text()
    current = lock_line(config, customer_yaml)
    locked_version = locked.split()[0]
    if current != locked:
        hint = (
            f"bump templateVersion in cdk.json (it is still {config.template_version}), then "
            if locked_version == config.template_version
            else ""
        )
        pytest.fail(
            "The customer onboarding template changed since stacks/customer_onboarding.lock "
            f"was written: {hint}run `{UPDATE_LOCK_COMMAND}` and commit the lock. Customers "
            "and the platform tell template revisions apart only by their version."
        )


# ---- organisation variant (item 7) ---------------------------------------------------------------


def test_organization_template_deploys_the_same_template_as_a_service_managed_stack_set(
    organization_yaml: str, customer_yaml: str
) -> None:
    template = yaml.safe_load(organization_yaml)
    ((_, stack_set),) = resources_of(template, "AWS::CloudFormation::StackSet").items()
    properties = stack_set["Properties"]
    assert properties["PermissionModel"] == "SERVICE_MANAGED"
    assert properties["AutoDeployment"] == {
        "Enabled": True,
        "RetainStacksOnAccountRemoval": False,
    }
    assert properties["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert properties["TemplateBody"] == customer_yaml
    assert len(customer_yaml.encode()) <= TEMPLATE_BODY_LIMIT
    (group,) = properties["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}}
    assert group["Regions"] == [{"Ref": "DeploymentRegion"}]
    assert template["Parameters"]["OrganizationalUnitIds"]["Type"] == "CommaDelimitedList"
    passed = {p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]}
    assert passed == {
        **{
            key: {"Ref": key}
            for key in (
                "ExternalId",
                "RegistrationToken",
                "ResourcePrefix",
                "PlatformAccountId",
                "RegistrationTopicArn",
            )
        },
        # A list parameter reaches each account as the comma-separated text it was given.
        "AllowedRegions": {"Fn::Join": [",", {"Ref": "AllowedRegions"}]},
    }
    customer_parameters = yaml.safe_load(customer_yaml)["Parameters"]
    for key in passed:
        assert (
            template["Parameters"][key]["AllowedPattern"]
            == customer_parameters[key]["AllowedPattern"]
        )


def test_organization_template_declares_passed_parameters_as_the_customer_template_does(
    organization_yaml: str, customer_yaml: str
) -> None:
    organization = yaml.safe_load(organization_yaml)["Parameters"]
    customer = yaml.safe_load(customer_yaml)["Parameters"]
    passed = (
        "ExternalId",
        "RegistrationToken",
        "ResourcePrefix",
        "PlatformAccountId",
        "RegistrationTopicArn",
        "AllowedRegions",
    )
    assert set(organization) == set(passed) | {
        "OrganizationalUnitIds",
        "DeploymentRegion",
        "CallAs",
    }
    for key in passed:
        differing = {
            field
            for field in set(organization[key]) | set(customer[key])
            if organization[key].get(field) != customer[key].get(field)
        }
        # The explicit differences: the StackSet's stacks live in DeploymentRegion, and
        # the organisation's registration token serves many accounts.
        assert differing == ({"Description"} if key in ORGANIZATION_WORDING else set()), key
    assert set(ORGANIZATION_WORDING) == {
        "RegistrationTopicArn",
        "RegistrationToken",
        "AllowedRegions",
    }
    assert "DeploymentRegion" in organization["RegistrationTopicArn"]["Description"]
    assert "DeploymentRegion" in organization["AllowedRegions"]["Description"]
    assert organization["ResourcePrefix"]["MinLength"] == 1
    assert all("ConstraintDescription" in organization[key] for key in passed)


def test_organization_allowed_regions_must_include_the_deployment_region(
    organization_yaml: str,
) -> None:
    rules = yaml.safe_load(organization_yaml)["Rules"]
    (assertion,) = rules["DeploymentRegionIsAllowed"]["Assertions"]
    assert "DeploymentRegion" in assertion.pop("AssertDescription")
    assert rules == {
        "DeploymentRegionIsAllowed": {
            # Only when AllowedRegions is given (its default is the list [""]).
            "RuleCondition": {"Fn::Not": [{"Fn::Contains": [{"Ref": "AllowedRegions"}, ""]}]},
            "Assertions": [
                {
                    "Assert": {
                        "Fn::Contains": [{"Ref": "AllowedRegions"}, {"Ref": "DeploymentRegion"}]
                    }
                }
            ],
        }
    }


def test_organization_template_refuses_a_body_over_the_template_body_limit(
    config: PlatformConfig,
) -> None:
    app = cdk.App(context=dict(ONBOARDING_CONTEXT))
    with pytest.raises(ValueError, match="TemplateURL"):
        OrganizationOnboardingStack(
            app, "Org", config=config, template_body="#" * (TEMPLATE_BODY_LIMIT + 1)
        )


def test_export_script_writes_both_templates(tmp_path: Path, config: PlatformConfig) -> None:
    from scripts.export_templates import main

    assert main(["--out", str(tmp_path)]) == 0
    released = handed_out(config)  # dist/ never carries the owner's account
    assert (tmp_path / "customer-onboarding.yaml").read_text() == render_customer_template(released)
    assert (tmp_path / "organization-onboarding.yaml").read_text() == render_organization_template(
        released
    )


def test_a_different_config_gives_a_different_but_valid_template(config: PlatformConfig) -> None:
    other = dataclasses.replace(config, project_name="acme")
    template = yaml.safe_load(render_customer_template(other))
    _, role = next(
        (k, r)
        for k, r in resources_of(template, "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == "acme-deployer"
    )
    assert "acme-launcher" in str(role["Properties"]["AssumeRolePolicyDocument"])
    assert template["Parameters"]["ResourcePrefix"]["Default"] == "acme"


def test_network_and_cluster_come_from_the_shared_constructs(config: PlatformConfig) -> None:
    # Item 2: the same constructs/ code as the platform stack, not a copy.
    from constructs.agent_cluster import AgentCluster
    from constructs.agent_network import AgentNetwork

    app = cdk.App(context=dict(ONBOARDING_CONTEXT))
    stack = CustomerOnboardingStack(app, "CustomerOnboarding", config=config)
    assert isinstance(stack.network, AgentNetwork)
    assert isinstance(stack.agents, AgentCluster)
    assert stack.agents.cluster.node.scope is stack.agents
