"""Service trust policies: a service may assume our roles only on behalf of our own account
(and, where the service sends it, our own resources): the confused-deputy guard."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from stacks.config import PlatformConfig
from stacks.onboarding_templates import render_customer_template
from tests.infra.conftest import Synthesized, default_context

ACCOUNT = {"Ref": "AWS::AccountId"}
# What each service's confused-deputy guide says it sends as aws:SourceArn, rendered as the
# templates spell it; None: aws:SourceAccount only (see ecs_tasks_principal's docstring).
ECS_RESOURCES = ["arn:", {"Ref": "AWS::Partition"}, ":ecs:", {"Ref": "AWS::Region"}, ":"]
FLOW_LOGS = ["arn:", {"Ref": "AWS::Partition"}, ":ec2:", {"Ref": "AWS::Region"}, ":"]


@pytest.fixture(scope="module")
def templates(default_app: Synthesized) -> dict[str, dict[str, Any]]:
    found = {path.name: json.loads(path.read_text()) for path in default_app.template_files()}
    config = PlatformConfig.from_context(default_context().get)
    found["customer-onboarding.yaml"] = yaml.safe_load(render_customer_template(config))
    return found


def service_trusts(templates: dict[str, dict[str, Any]]) -> list[tuple[str, str, dict, Any]]:
    """(template, role, statement, service) for every Service-principal trust statement."""
    found = []
    for name, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            document = resource["Properties"]["AssumeRolePolicyDocument"]
            for statement in document["Statement"]:
                service = statement.get("Principal", {}).get("Service")
                if service:
                    found.append((name, logical_id, statement, service))
    return found


def source_arn(statement: dict[str, Any]) -> Any:
    arn_conditions = statement["Condition"].get("ArnLike") or statement["Condition"].get(
        "ArnEquals"
    )
    return arn_conditions["aws:SourceArn"] if arn_conditions else None


@pytest.mark.parametrize(
    "service", ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "scheduler.amazonaws.com"]
)
def test_service_trusts_carry_the_source_account(
    templates: dict[str, dict[str, Any]], service: str
) -> None:
    trusts = [t for t in service_trusts(templates) if t[3] == service]
    assert trusts, f"no role trusts {service}"
    for template, role, statement, _ in trusts:
        condition = statement.get("Condition", {})
        assert condition.get("StringEquals", {}).get("aws:SourceAccount") == ACCOUNT, (
            template,
            role,
        )


def test_every_template_has_the_guarded_roles(templates: dict[str, dict[str, Any]]) -> None:
    services_by_template: dict[str, set[str]] = {}
    for template, _, _, service in service_trusts(templates):
        services_by_template.setdefault(template, set()).add(service)
    platform = "Platform.template.json"
    control = "ControlPlane.template.json"
    assert {"ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com"} <= services_by_template[
        platform
    ]
    assert "scheduler.amazonaws.com" in services_by_template[control]
    assert {"ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com"} <= services_by_template[
        "customer-onboarding.yaml"
    ]


def test_task_roles_accept_only_this_accounts_ecs_in_this_region(
    templates: dict[str, dict[str, Any]],
) -> None:
    for name, template in templates.items():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            role_name = json.dumps(resource["Properties"].get("RoleName", ""))
            (statement,) = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"][:1]
            if statement.get("Principal", {}).get("Service") != "ecs-tasks.amazonaws.com":
                continue
            arn = source_arn(statement)
            if "agent-task" in role_name:
                assert arn == {"Fn::Join": ["", [*ECS_RESOURCES, ACCOUNT, ":*"]]}, name
            else:
                # The execution role: ECS documents no SourceArn for it.
                assert "task-execution" in role_name, (name, role_name)
                assert arn is None, name


def test_flow_log_roles_accept_only_this_accounts_flow_logs(
    templates: dict[str, dict[str, Any]],
) -> None:
    trusts = [t for t in service_trusts(templates) if t[3] == "vpc-flow-logs.amazonaws.com"]
    assert len(trusts) == 2  # the platform's VPC and the customer's
    for template, role, statement, _ in trusts:
        assert source_arn(statement) == {
            "Fn::Join": ["", [*FLOW_LOGS, ACCOUNT, ":vpc-flow-log/*"]]
        }, (template, role)


def test_the_stopper_role_accepts_only_schedules_of_its_own_group(
    templates: dict[str, dict[str, Any]],
) -> None:
    (trust,) = [t for t in service_trusts(templates) if t[3] == "scheduler.amazonaws.com"]
    _, _, statement, _ = trust
    # The Scheduler guide: SourceArn is the schedule group's ARN, never a schedule's.
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":scheduler:",
                {"Ref": "AWS::Region"},
                ":",
                ACCOUNT,
                ":schedule-group/agent-builder-test-timeouts",
            ],
        ]
    }
