"""The app's configuration and what it synthesizes: cdk.json and cdk.out, read in one place.

Everything outside the CDK app that needs to know what the app declares reads it here,
never from a list of its own: local mode (it builds the emulated platform from the
templates), the exporters and the clean-up script (cdk.json's context, the project
prefix, the stacks' names), the runtime test fixtures (the tables, as the templates
define them) and the benchmarks.

It imports nothing heavy (no boto3, no jsii), so a script or a test fixture can use it
for the price of reading a few JSON files; synthesizing runs the app in a subprocess
(`python -m local_mode.synth`).

Resources are found by what they are (type, handler, the environment variable that
names them), never by a logical id: the stacks' construct tree may move, their
stateless logical ids with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = ROOT / "cdk.json"
CDK_OUT = ROOT / "cdk.out"
# What the templates are made from: a .py or .json file here newer than cdk.out makes
# cdk.out stale. (lambda_src only changes asset hashes, which no reader of cdk.out uses;
# stacks/customer_onboarding.lock is written after a synth and changes no template.)
APP_SOURCES = ("app.py", "cdk.json", "stacks", "constructs")
TABLE = "AWS::DynamoDB::Table"
FUNCTION = "AWS::Lambda::Function"


class TemplateError(Exception):
    """cdk.out is missing or incomplete, or declares something its reader cannot follow."""


# ---- cdk.json -------------------------------------------------------------------------


def context_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """`key=value` pairs as `cdk synth -c key=value` passes them: values stay strings
    (stacks/config.py accepts the string spelling of every setting)."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"context override {pair!r} is not key=value")
        overrides[key] = value
    return overrides


def cdk_context(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """cdk.json's context, with `overrides` on top (what the app sees as its context)."""
    context = dict(json.loads(CDK_JSON.read_text()).get("context", {}))
    context.update(overrides or {})
    return context


def project_prefix(overrides: Mapping[str, Any] | None = None) -> str:
    """The project prefix every name and tag carries (context `projectName`)."""
    return str(cdk_context(overrides)["projectName"])


# ---- cdk.out --------------------------------------------------------------------------


@dataclass
class Stack:
    """One CloudFormation stack of the cloud assembly."""

    artifact_id: str
    name: str
    template: dict[str, Any]
    dependencies: list[str]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type:
                yield logical_id, resource

    def functions(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.of_type(FUNCTION)

    @property
    def short_name(self) -> str:
        """The stack's name without the project prefix (`control-plane`)."""
        prefix = self.tags.get("Project")
        return self.name.removeprefix(f"{prefix}-") if prefix else self.name


@dataclass(frozen=True)
class Table:
    """An AWS::DynamoDB::Table as its template declares it (unresolved properties)."""

    stack: str
    logical_id: str
    properties: dict[str, Any]

    @property
    def key_schema(self) -> list[tuple[str, str]]:
        """(attribute, HASH | RANGE) pairs."""
        return [(k["AttributeName"], k["KeyType"]) for k in self.properties["KeySchema"]]

    @property
    def index_names(self) -> list[str]:
        return [index["IndexName"] for index in self.properties.get("GlobalSecondaryIndexes", [])]

    @property
    def ttl_attribute(self) -> str | None:
        ttl = self.properties.get("TimeToLiveSpecification") or {}
        return str(ttl["AttributeName"]) if ttl.get("Enabled") in (True, "true") else None


def load_stacks(cdk_out: Path = CDK_OUT) -> dict[str, Stack]:
    """Every CloudFormation stack in cdk.out's manifest, by artifact id."""
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.is_file():
        raise TemplateError(f"{manifest_path} not found: synthesize first (make synth)")
    manifest = json.loads(manifest_path.read_text())
    stacks: dict[str, Stack] = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties", {})
        template_path = cdk_out / properties["templateFile"]
        if not template_path.is_file():
            raise TemplateError(f"{template_path} is listed in the manifest but missing")
        stacks[artifact_id] = Stack(
            artifact_id=artifact_id,
            name=properties.get("stackName", artifact_id),
            template=json.loads(template_path.read_text()),
            dependencies=[
                d for d in artifact.get("dependencies", []) if d in manifest["artifacts"]
            ],
            tags=dict(properties.get("tags", {})),
        )
    if not stacks:
        raise TemplateError(f"{manifest_path} lists no CloudFormation stack")
    return stacks


def stack_with_handler(stacks: Mapping[str, Stack], handler: str) -> tuple[Stack, dict[str, Any]]:
    """The stack and function resource whose Handler is `handler` (e.g. handlers.api.handler)."""
    for stack in stacks.values():
        for _, resource in stack.functions():
            if resource.get("Properties", {}).get("Handler") == handler:
                return stack, resource
    raise TemplateError(f"no Lambda function with handler {handler} in the templates")


def dependency_closure(stacks: Mapping[str, Stack], root: Stack) -> list[Stack]:
    """`root` and every stack it depends on, dependencies first."""
    ordered: list[Stack] = []
    seen: set[str] = set()

    def visit(stack: Stack) -> None:
        if stack.artifact_id in seen:
            return
        seen.add(stack.artifact_id)
        for dependency in stack.dependencies:
            if dependency in stacks:
                visit(stacks[dependency])
        ordered.append(stack)

    visit(root)
    return ordered


def referenced_resource(
    stacks: Mapping[str, Stack], stack: Stack, value: Any
) -> tuple[Stack, str] | None:
    """The resource a `Ref` or an `Fn::ImportValue` of a `Ref` points at, if any."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (function, argument), *_ = value.items()
    if function == "Ref" and isinstance(argument, str) and argument in stack.resources:
        return stack, argument
    if function == "Fn::ImportValue" and isinstance(argument, str):
        for exporting in stacks.values():
            for output in exporting.template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == argument:
                    return referenced_resource(stacks, exporting, output.get("Value"))
    return None


def function_tables(stacks: Mapping[str, Stack]) -> dict[str, Table]:
    """The tables the functions are told about, by environment variable (PROFILES_TABLE...).

    That variable is the contract between the stacks and the handlers (lambda_src reads
    the table's name from it), so it names a table better than its logical id does.
    """
    tables: dict[str, Table] = {}
    for stack in stacks.values():
        for _, function in stack.functions():
            environment = (function.get("Properties", {}).get("Environment") or {}).get(
                "Variables"
            ) or {}
            for variable, value in environment.items():
                target = referenced_resource(stacks, stack, value)
                if target is None:
                    continue
                owner, logical_id = target
                resource = owner.resources[logical_id]
                if resource.get("Type") != TABLE:
                    continue
                table = Table(owner.artifact_id, logical_id, resource.get("Properties", {}))
                known = tables.setdefault(variable, table)
                if (known.stack, known.logical_id) != (table.stack, table.logical_id):
                    raise TemplateError(
                        f"{variable} names {known.logical_id} in one function and "
                        f"{table.logical_id} in another"
                    )
    if not tables:
        raise TemplateError("no function's environment names a DynamoDB table")
    return tables


# ---- synthesizing -------------------------------------------------------------------


def synthesize(outdir: Path, overrides: Mapping[str, Any] | None = None) -> None:
    """Synthesize the app into `outdir` with cdk.json's context plus `overrides`, as
    `cdk synth -c key=value -o outdir` would (cdk-nag off: it validates, it does not
    change a template). Runs in a subprocess: the jsii runtime stays out of the caller."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(cdk_context(overrides)),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get(
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", "local_mode.synth"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise TemplateError(f"synth failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


def _newest_source() -> float:
    newest = 0.0
    for name in APP_SOURCES:
        path = ROOT / name
        paths = path.rglob("*") if path.is_dir() else [path]
        for source in paths:
            if source.suffix in (".py", ".json") and "__pycache__" not in source.parts:
                newest = max(newest, source.stat().st_mtime)
    return newest


def is_fresh(cdk_out: Path = CDK_OUT) -> bool:
    """cdk.out holds a synthesis newer than every file of the app it came from."""
    manifest = cdk_out / "manifest.json"
    return manifest.is_file() and manifest.stat().st_mtime >= _newest_source()


def synthesized(cdk_out: Path = CDK_OUT) -> Path:
    """`cdk_out`, synthesized first if it is missing or older than the app's sources.

    CI and `make synth` leave a fresh cdk.out, which is used as it is. Otherwise the app
    is synthesized once, under a lock (pytest-xdist workers ask at the same time), into
    a sibling directory that then replaces `cdk_out` whole, so a reader never sees half
    of one synthesis.
    """
    if is_fresh(cdk_out):
        return cdk_out
    digest = hashlib.sha256(str(cdk_out.resolve()).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"agent-builder-synth-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_fresh(cdk_out):  # another process synthesized while this one waited
            return cdk_out
        staging = Path(tempfile.mkdtemp(prefix=f"{cdk_out.name}.", dir=cdk_out.parent))
        retired = staging.with_name(staging.name + "-old")
        try:
            synthesize(staging)
            if cdk_out.exists():
                cdk_out.rename(retired)
            staging.rename(cdk_out)
        finally:
            for leftover in (staging, retired):
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(leftover)
    return cdk_out
