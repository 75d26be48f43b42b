"""The synthesized CloudFormation templates, read the way CloudFormation reads them.

Local mode creates nothing from a list of its own: it walks cdk.out (read by
assembly.py: the manifest, then each stack's template) and resolves intrinsic functions (Ref, Fn::GetAtt,
Fn::ImportValue, Fn::Join, Fn::Sub, ...) against what the emulator created. The
physical resources themselves come from a `Provisioner` (emulator.py), asked lazily
the first time something refers to them, so the order of resources in a template
does not matter.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from local_mode.assembly import Stack, TemplateError

NO_VALUE = object()  # AWS::NoValue: the property is dropped


@dataclass
class Physical:
    """What CloudFormation would know about a created resource: Ref and attributes."""

    ref: str
    attributes: dict[str, Any] = field(default_factory=dict)


class Provisioner(Protocol):
    def supports(self, resource_type: str) -> bool: ...

    def create(
        self, stack: Stack, logical_id: str, resource_type: str, properties: dict[str, Any]
    ) -> Physical: ...


def generated_name(stack: Stack, logical_id: str, *, max_length: int = 128) -> str:
    """A stable CloudFormation-style name (`<stack>-<LogicalId>-<SUFFIX>`) for unnamed resources."""
    suffix = hashlib.sha256(f"{stack.name}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack.name}-{logical_id}"[: max_length - len(suffix) - 1]
    return f"{head}-{suffix}"


_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Resolves intrinsic functions across a set of stacks, creating resources on demand."""

    def __init__(
        self,
        stacks: list[Stack],
        provisioner: Provisioner,
        *,
        region: str,
        account_id: str,
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.stacks = {stack.artifact_id: stack for stack in stacks}
        self._provisioner = provisioner
        self.region = region
        self.account_id = account_id
        self._parameters = parameters or {}
        self._physical: dict[tuple[str, str], Physical] = {}
        self._creating: set[tuple[str, str]] = set()
        self._exports: dict[str, tuple[Stack, Any]] = {}
        for stack in stacks:
            for output in stack.template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None:
                    name = self.resolve(stack, export)
                    self._exports[str(name)] = (stack, output["Value"])

    # ---- resources ------------------------------------------------------------------

    def provision_all(self, stack: Stack) -> None:
        """Create every resource of a supported type in `stack` (conditions honoured)."""
        for logical_id, resource in stack.resources.items():
            if self._provisioner.supports(resource["Type"]) and self._condition_of(stack, resource):
                self.physical(stack, logical_id)

    def physical(self, stack: Stack, logical_id: str) -> Physical:
        key = (stack.artifact_id, logical_id)
        if key in self._physical:
            return self._physical[key]
        resource = stack.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"{stack.name}: no resource {logical_id}")
        if key in self._creating:
            raise TemplateError(f"{stack.name}: {logical_id} refers to itself")
        self._creating.add(key)
        try:
            resource_type = resource["Type"]
            if self._provisioner.supports(resource_type):
                properties = self.resolve(stack, resource.get("Properties", {}))
                physical = self._provisioner.create(stack, logical_id, resource_type, properties)
            else:
                physical = self._placeholder(stack, logical_id, resource)
        finally:
            self._creating.discard(key)
        self._physical[key] = physical
        return physical

    def created(self) -> Iterator[tuple[Stack, str, str, Physical]]:
        for (artifact_id, logical_id), physical in self._physical.items():
            stack = self.stacks[artifact_id]
            yield stack, logical_id, stack.resources[logical_id]["Type"], physical

    def _placeholder(self, stack: Stack, logical_id: str, resource: dict[str, Any]) -> Physical:
        """Resources the emulator does not need (alarms, policies, functions...): a name
        and ARN-shaped attributes, so what refers to them still resolves."""
        resource_type = resource["Type"]
        properties = resource.get("Properties", {})
        kind = resource_type.split("::")[-1]
        name = properties.get(f"{kind}Name")
        ref = name if isinstance(name, str) else generated_name(stack, logical_id)
        service = resource_type.split("::")[1].lower() if "::" in resource_type else "custom"
        arn = f"arn:aws:{service}:{self.region}:{self.account_id}:{kind.lower()}/{ref}"
        attributes: dict[str, Any] = {"Arn": arn}
        if resource_type == "AWS::ECR::Repository":
            attributes["RepositoryUri"] = (
                f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{ref}"
            )
            attributes["Arn"] = f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{ref}"
        return Physical(ref=ref, attributes=attributes)

    # ---- intrinsic functions --------------------------------------------------------

    def resolve(self, stack: Stack, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(stack, item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            function = self._functions().get(key)
            if function is not None:
                return function(stack, argument)
        resolved = {key: self.resolve(stack, item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Stack, Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::ImportValue": self._import_value,
            "Fn::Join": lambda s, a: str(a[0]).join(
                str(part) for part in self.resolve(s, a[1]) if part is not NO_VALUE
            ),
            "Fn::Select": lambda s, a: self.resolve(s, a[1])[int(self.resolve(s, a[0]))],
            "Fn::Split": lambda s, a: str(self.resolve(s, a[1])).split(str(a[0])),
            "Fn::Sub": self._sub,
            "Fn::GetAZs": lambda s, a: [f"{self.region}{zone}" for zone in "abc"],
            "Fn::If": lambda s, a: self.resolve(s, a[1] if self._condition(s, a[0]) else a[2]),
            "Fn::FindInMap": lambda s, a: s.template["Mappings"][self.resolve(s, a[0])][
                self.resolve(s, a[1])
            ][self.resolve(s, a[2])],
            "Fn::Base64": lambda s, a: self.resolve(s, a),
            "Fn::Equals": lambda s, a: self._condition_value(s, {"Fn::Equals": a}),
        }

    def _ref(self, stack: Stack, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{stack.name}/local",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        parameters = stack.template.get("Parameters", {})
        if name in parameters:
            if name in self._parameters:
                return self._parameters[name]
            parameter = parameters[name]
            if "Default" in parameter and not str(parameter.get("Type", "")).startswith("AWS::SSM"):
                default = parameter["Default"]
                return (
                    default.split(",") if parameter.get("Type") == "CommaDelimitedList" else default
                )
            # SSM-backed parameters (e.g. a public layer ARN) have no local value.
            return f"local-{name}"
        return self.physical(stack, name).ref

    def _get_att(self, stack: Stack, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, attribute = argument.split(".", 1)
        else:
            logical_id, attribute = argument[0], self.resolve(stack, argument[1])
        physical = self.physical(stack, logical_id)
        if attribute in physical.attributes:
            return physical.attributes[attribute]
        return f"{physical.ref}.{attribute}"

    def _import_value(self, stack: Stack, argument: Any) -> Any:
        name = str(self.resolve(stack, argument))
        if name not in self._exports:
            raise TemplateError(f"{stack.name}: no stack exports {name}")
        exporting, value = self._exports[name]
        return self.resolve(exporting, value)

    def _sub(self, stack: Stack, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(stack, argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._get_att(stack, name))
            return str(self._ref(stack, name))

        return _SUB.sub(replace, text).replace("${!", "${")

    # ---- conditions -----------------------------------------------------------------

    def _condition_of(self, stack: Stack, resource: dict[str, Any]) -> bool:
        name = resource.get("Condition")
        return True if name is None else self._condition(stack, name)

    def _condition(self, stack: Stack, name: str) -> bool:
        return bool(self._condition_value(stack, stack.template["Conditions"][name]))

    def _condition_value(self, stack: Stack, expression: Any) -> Any:
        if not isinstance(expression, dict) or len(expression) != 1:
            return self.resolve(stack, expression)
        (key, argument), *_ = expression.items()
        if key == "Condition":
            return self._condition(stack, argument)
        if key == "Fn::Equals":
            left, right = (self._condition_value(stack, item) for item in argument)
            return left == right
        if key == "Fn::Not":
            return not self._condition_value(stack, argument[0])
        if key == "Fn::And":
            return all(self._condition_value(stack, item) for item in argument)
        if key == "Fn::Or":
            return any(self._condition_value(stack, item) for item in argument)
        return self.resolve(stack, expression)
