"""Carved-out constructs keep the logical ids their resources were deployed with."""

from __future__ import annotations

from typing import ClassVar

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns

from constructs import Construct
from stacks.logical_ids import DeployedIdsStack, logical_id

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


class _Carved(DeployedIdsStack):
    TRANSPARENT: ClassVar[frozenset[str]] = frozenset({"Group"})


def test_transparent_constructs_are_left_out_of_their_resources_ids() -> None:
    app = cdk.App()
    before = cdk.Stack(app, "Before")
    after = _Carved(app, "After")
    sns.Topic(before, "Registrations")
    sns.Topic(Construct(after, "Group"), "Registrations")
    sns.Topic(Construct(after, "Other"), "Registrations")  # not transparent: a new id
    assembly = app.synth()
    assert set(assembly.get_stack_by_name("Before").template["Resources"]) == {
        "RegistrationsA6F76D76"
    }
    assert set(assembly.get_stack_by_name("After").template["Resources"]) == {
        "RegistrationsA6F76D76",
        "OtherRegistrations7FC28F28",
    }


def test_two_resources_that_would_share_an_id_fail_the_synth() -> None:
    app = cdk.App()
    stack = _Carved(app, "After")
    sns.Topic(stack, "Registrations")
    sns.Topic(Construct(stack, "Group"), "Registrations")
    with pytest.raises(RuntimeError, match="already contains 'RegistrationsA6F76D76'"):
        app.synth()
