"""Every condition key and resource ARN of the deployer role exists for its action in the
IAM service authorization reference, as the tools we ship with carry it: parliament's
iam_definition.json (condition keys per action and resource type) and cfn-lint's
Policies.json (resource types and their ARN formats per action)."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint
import pytest
import yaml

from stacks.config import PlatformConfig
from stacks.onboarding_templates import render_customer_template
from tests.infra.conftest import default_context
from tests.infra.policy_render import policy_documents
from tests.infra.test_parliament import parliament_python

CFN_LINT_POLICIES = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
# Condition operators whose key may be absent (…IfExists) or that test presence (Null) are
# still keys of the action: the same lookup applies.
OPERATOR = re.compile(r"^(ForAllValues:|ForAnyValue:)?([A-Za-z]+?)(IfExists)?$")
# ecs:ListTasks has a container-instance resource type but is granted on "*" with the
# ecs:cluster condition (the allow-list of test_parliament.py says why).
STAR_EXCEPTIONS = {"ecs:ListTasks"}


@cache
def parliament_reference() -> dict[str, Any]:
    where = subprocess.run(
        [
            parliament_python(),
            "-c",
            "import parliament, os; print(os.path.dirname(parliament.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    services = json.loads((Path(where) / "iam_definition.json").read_text())
    return {service["prefix"]: service for service in services}


def condition_keys(action: str) -> set[str]:
    """The condition keys the reference lists for `action` (action- and resource-level)."""
    prefix, name = action.split(":")
    service = parliament_reference()[prefix]
    (privilege,) = [p for p in service["privileges"] if p["privilege"] == name]
    return {key for rt in privilege["resource_types"] for key in rt["condition_keys"]}


def key_listed(key: str, listed: set[str]) -> bool:
    return any(
        key == known or re.fullmatch(re.escape(known).replace(r"\$\{TagKey\}", r"[^/]+"), key)
        for known in listed
    )


def arn_formats(action: str) -> list[str]:
    prefix, name = action.split(":")
    service = json.loads(CFN_LINT_POLICIES.read_text())[prefix]
    types = service["Actions"][name.lower()].get("Resources", [])
    return [fmt for t in types for fmt in service["Resources"][t]["ARNFormats"]]


def arn_matches(arn: str, fmt: str) -> bool:
    pattern = re.escape(fmt)
    for variable in ("Partition", "Region", "Account"):
        pattern = pattern.replace(re.escape("${" + variable + "}"), "[^:]+")
    pattern = pattern.replace(re.escape(".*"), ".*")
    return re.fullmatch(pattern, arn) is not None


@pytest.fixture(scope="module")
def statements() -> list[dict[str, Any]]:
    config = PlatformConfig.from_context(default_context().get)
    template = yaml.safe_load(render_customer_template(config))
    (document,) = [
        d
        for d in policy_documents("customer", template)
        if d.resource.startswith("DeployerPermissions")
    ]
    return list(document.document["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_condition_key_exists_for_every_action_it_limits(
    statements: list[dict[str, Any]],
) -> None:
    checked = 0
    for statement in statements:
        for operator, keys in statement.get("Condition", {}).items():
            assert OPERATOR.match(operator), operator
            for key in keys:
                for action in as_list(statement["Action"]):
                    assert key_listed(key, condition_keys(action)), (
                        f"{statement['Sid']}: {key} is not a condition key of {action}"
                    )
                    checked += 1
    assert checked >= 20  # the limits the deployer relies on are all looked up


def test_the_limits_the_issue_asks_for_are_there(statements: list[dict[str, Any]]) -> None:
    def keys_of(action: str) -> set[str]:
        return {
            key
            for s in statements
            if action in as_list(s["Action"])
            for keys in s.get("Condition", {}).values()
            for key in keys
        }

    assert {
        "ecs:cluster",
        "ecs:capacity-provider",
        "ecs:enable-execute-command",
        "ecs:enable-ebs-volumes",
        "aws:ResourceTag/Project",
        "aws:RequestTag/Project",
        "aws:TagKeys",
    } <= keys_of("ecs:RunTask")
    assert {
        "ecs:compute-compatibility",
        "ecs:privileged",
        "ecs:task-cpu",
        "ecs:task-memory",
        "aws:RequestTag/Project",
        "aws:TagKeys",
    } <= keys_of("ecs:RegisterTaskDefinition")
    assert {"ecs:cluster", "aws:ResourceTag/Project"} <= keys_of("ecs:StopTask")
    assert {"ecs:cluster", "aws:ResourceTag/Project"} <= keys_of("ecs:DescribeTasks")
    assert {"aws:ResourceTag/Project"} <= keys_of("ecs:DeleteTaskDefinitions")
    assert {"ecs:CreateAction", "aws:TagKeys"} <= keys_of("ecs:TagResource")


def test_every_resource_has_an_arn_form_the_action_supports(
    statements: list[dict[str, Any]],
) -> None:
    for statement in statements:
        for action in as_list(statement["Action"]):
            formats = arn_formats(action)
            for arn in as_list(statement["Resource"]):
                if arn == "*":
                    assert not formats or action in STAR_EXCEPTIONS, (
                        f"{statement['Sid']}: {action} supports {formats}; do not grant it on *"
                    )
                    continue
                assert any(arn_matches(arn, fmt) for fmt in formats), (
                    f"{statement['Sid']}: {arn} is no resource of {action} ({formats})"
                )


def test_task_definitions_are_only_the_runner_family(statements: list[dict[str, Any]]) -> None:
    families = {
        arn.split(":task-definition/")[1]
        for s in statements
        for arn in as_list(s["Resource"])
        if ":task-definition/" in arn
    }
    assert families == {"agent-builder-agent-runner:*"}


@pytest.fixture(scope="module")
def region_limit() -> dict[str, Any]:
    config = PlatformConfig.from_context(default_context().get)
    template = yaml.safe_load(render_customer_template(config))
    (document,) = [
        d
        for d in policy_documents("customer", template)
        if d.resource.startswith("DeployerAllowedRegions")
    ]
    (statement,) = document.document["Statement"]
    return dict(statement)


def test_the_region_limit_denies_only_real_regional_actions_by_a_global_key(
    region_limit: dict[str, Any], statements: list[dict[str, Any]]
) -> None:
    assert region_limit["Effect"] == "Deny"
    # aws:RequestedRegion is a global condition key: every action's request carries it,
    # except those of global services (IAM, STS), which the statement leaves out.
    assert list(region_limit["Condition"]) == ["StringNotEquals"]
    assert list(region_limit["Condition"]["StringNotEquals"]) == ["aws:RequestedRegion"]
    denied = as_list(region_limit["Action"])
    for action in denied:
        prefix, name = action.split(":")
        assert prefix not in {"iam", "sts"}, action
        privileges = {p["privilege"] for p in parliament_reference()[prefix]["privileges"]}
        assert name in privileges, f"{action} is no action of the IAM reference"
    allowed = {a for s in statements for a in as_list(s["Action"])}
    assert set(denied) == allowed - {"iam:PassRole"}


def test_the_check_can_fail() -> None:
    assert not key_listed("ecs:task-definition", condition_keys("ecs:RunTask"))
    assert key_listed("aws:RequestTag/Project", condition_keys("ecs:RunTask"))
    assert not arn_matches(
        "arn:aws:ecs:us-east-1:111111111111:cluster/x",
        arn_formats("ecs:RegisterTaskDefinition")[0].replace(".*", "task-definition/.*"),
    )
