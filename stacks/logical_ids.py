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
from typing import ClassVar

from aws_cdk import CfnElement, Stack

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

    `TRANSPARENT` names direct children that were carved out of the stack after it was
    deployed: a resource at `<stack>/Tables/RunsTable/Resource` keeps the id it had at
    `<stack>/RunsTable/Resource`. Two resources that would share an id fail the synth
    (CloudFormation's "section 'Resources' already contains ..."), never the deploy.
    """

    TRANSPARENT: ClassVar[frozenset[str]] = frozenset()

    def _allocate_logical_id(self, cfn_element: CfnElement) -> str:
        path = cfn_element.node.path.split("/")[len(self.node.path.split("/")) :]
        if len(path) > 1 and path[0] in self.TRANSPARENT:
            return logical_id(path[1:])
        return super()._allocate_logical_id(cfn_element)


__all__ = ["DeployedIdsStack", "logical_id"]
