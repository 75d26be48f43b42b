"""Carved-out constructs keep the logical ids their resources were deployed with."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns

from constructs import Construct
from stacks.logical_ids import DeployedIdsStack, logical_id
from tests.infra.conftest import Synthesized

PATHS = [
    ("Registrations",),
    ("Registrations", "Resource"),
    ("Users", "UserPool", "Resource"),
    ("Users", "UserPool", "WebClient", "Resource"),
    ("Api", "Function", "Resource"),
    ("Api", "Api", "Resource"),  # consecutive duplicates leave the readable part
    ("Wrapper", "Default", "Resource"),  # "Default" leaves the id altogether
    ("GET--agents--{agentId}", "Resource"),  # CDK turns "/" in an id into "--"
    ("x" * 300, "Resource"),
]


def _topic(scope: Construct, path: tuple[str, ...]) -> sns.CfnTopic:
    for construct_id in path[:-1]:
        scope = scope.node.try_find_child(construct_id) or Construct(scope, construct_id)  # type: ignore[assignment]
    return sns.CfnTopic(scope, path[-1])


def test_logical_id_is_what_cdk_itself_allocates() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Plain")
    for path in PATHS:
        topic = _topic(stack, path)
        assert logical_id(path) == stack.resolve(topic.logical_id), path


def test_logical_id_matches_pinned_deployed_ids() -> None:
    assert logical_id(["RunsTable", "Resource"]) == "RunsTable9D121A51"
    assert logical_id(["Registrations", "Resource"]) == "RegistrationsA6F76D76"


def test_transparent_constructs_are_left_out_of_their_resources_ids() -> None:
    app = cdk.App()
    before = cdk.Stack(app, "Before")
    after = DeployedIdsStack(app, "After")
    sns.Topic(before, "Registrations")
    sns.Topic(before, "Late")
    group = Construct(after, "Group")
    sns.Topic(group, "Registrations")
    after.transparent(group)
    sns.Topic(group, "Late")  # added after transparent(): keep_deployed_ids() catches it
    sns.Topic(Construct(after, "Other"), "Registrations")  # not transparent: a new id
    after.keep_deployed_ids()
    assembly = app.synth()
    deployed = set(assembly.get_stack_by_name("Before").template["Resources"])
    assert deployed == {"RegistrationsA6F76D76", logical_id(["Late", "Resource"])}
    assert set(assembly.get_stack_by_name("After").template["Resources"]) == deployed | {
        "OtherRegistrations7FC28F28"
    }


def test_two_resources_that_would_share_an_id_fail_the_synth() -> None:
    app = cdk.App()
    stack = DeployedIdsStack(app, "After")
    sns.Topic(stack, "Registrations")
    sns.Topic(stack.transparent(Construct(stack, "Group")), "Registrations")
    stack.keep_deployed_ids()
    with pytest.raises(RuntimeError, match="already contains 'RegistrationsA6F76D76'"):
        app.synth()


def test_every_resource_in_the_control_planes_constructs_has_its_stack_level_id(
    default_app: Synthesized,
) -> None:
    # keep_deployed_ids() must come after the last resource the stack adds to them.
    stack = default_app.platform.control_plane
    resources = default_app.template(stack).to_json()["Resources"]
    carved = {construct.node.id for construct in stack.transparent_constructs}
    assert carved == {
        "Tables",
        "TimeLimit",
        "Functions",
        "CustomerRegistration",
        "PublicApi",
        "Alarms",
    }
    checked = 0
    for construct in stack.transparent_constructs:
        for element in construct.node.find_all():
            if isinstance(element, cdk.CfnResource):
                assert logical_id(element.node.path.split("/")[2:]) in resources, element.node.path
                checked += 1
    assert checked > 50
