"""Logical ids that outlive a construct boundary: deployed resources are never renamed.

CloudFormation replaces a resource whose logical id changes. For a table or a bucket that
loses data; for a named resource (a function, a role, a log group, a topic) the new copy
fails to create beside the old one; for an SNS subscription or a topic policy the old one's
deletion undoes the new one. So when resources that a deployed stack created as its own
children move into a construct, they keep the logical ids they were deployed with.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TypeVar

from aws_cdk import CfnElement, Stack

from constructs import IConstruct

C = TypeVar("C", bound=IConstruct)

# What CDK leaves out of logical ids: "Default" everywhere, "Resource" from the readable part.
_HIDDEN = "Default"
_HIDDEN_FROM_HUMAN = "Resource"
_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


def logical_id(path: Sequence[str]) -> str:
    """The logical id CDK gives a resource at `path` (construct ids below the stack).

    The same algorithm as aws-cdk-lib's `makeUniqueId` (core/lib/private/uniqueid.ts):
    readable ids with their hash of the path. tests/infra/test_logical_ids.py holds it to
    CDK's own output.
    """
    components = [c for c in path if c != _HIDDEN]
    if not components:
        raise ValueError("a logical id needs at least one construct id")
    if len(components) == 1:
        candidate = _NOT_ALPHANUMERIC.sub("", components[0])
        if len(candidate) <= 255:
            return candidate
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()
    human: list[str] = []
    for component in components:
        if not human or human[-1] != component:  # CDK drops consecutive duplicates
            human.append(component)
    readable = "".join(_NOT_ALPHANUMERIC.sub("", c) for c in human if c != _HIDDEN_FROM_HUMAN)
    return readable[:240] + digest[:8].upper()


class DeployedIdsStack(Stack):
    """A stack some of whose child constructs are left out of their resources' logical ids.

    Constructs carved out of the stack after it was deployed go through `transparent()`
    as they are created: a resource at `<stack>/Tables/RunsTable/Resource` keeps the id it
    had at `<stack>/RunsTable/Resource`. What the stack adds inside them later (a role's
    default policy after a grant, a function's permissions) gets its id from
    `keep_deployed_ids()`, the last call of the subclass's constructor. Two resources that
    would share an id fail the synth ("section 'Resources' already contains ..."), never
    the deploy.

    The ids are set with `override_logical_id`, once per resource, rather than by
    overriding `allocate_logical_id`: CDK calls that again at every resolution of every
    id, each a call from the jsii runtime into Python, which doubled the synth time.
    """

    def transparent(self, construct: C) -> C:
        self.__dict__.setdefault("_transparent", []).append(construct)
        self._keep_ids(construct)
        return construct

    def keep_deployed_ids(self) -> None:
        for construct in self.transparent_constructs:
            self._keep_ids(construct)

    @property
    def transparent_constructs(self) -> tuple[IConstruct, ...]:
        return tuple(self.__dict__.get("_transparent", ()))

    def _keep_ids(self, construct: IConstruct) -> None:
        kept: set[str] = self.__dict__.setdefault("_kept", set())
        depth = len(construct.node.path.split("/"))
        for element in construct.node.find_all():
            if not isinstance(element, CfnElement):
                continue
            path = element.node.path
            if path not in kept:
                kept.add(path)
                element.override_logical_id(logical_id(path.split("/")[depth:]))


__all__ = ["DeployedIdsStack", "logical_id"]
