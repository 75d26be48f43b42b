"""The platform's Lambda functions, run in this process.

Each function keeps Lambda's one-event-at-a-time model (a lock per function), gets
a Lambda-like context object, and reads the environment the template gives it, with
Refs and imports resolved to what the emulator created. Functions share one
environment in the stack; local mode checks that rather than assuming it.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from local_mode.assembly import ROOT, Stack, TemplateError
from local_mode.templates import Resolver

LAMBDA_SRC = ROOT / "lambda_src"

log = logging.getLogger("local_mode.functions")


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    handler: str
    memory: int
    timeout: int
    environment: dict[str, str]


def function_specs(
    resolver: Resolver, stack: Stack, *, required: str = "handlers.api.handler"
) -> dict[str, FunctionSpec]:
    """The stack's functions whose code is lambda_src (handler `handlers.*`), by handler."""
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in stack.functions():
        properties = resource.get("Properties", {})
        handler = properties.get("Handler", "")
        if not str(handler).startswith("handlers."):
            continue  # CDK's own helper functions (auto-delete, ECR copy...)
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        environment = {key: str(value) for key, value in resolver.resolve(stack, variables).items()}
        name = resolver.resolve(stack, properties.get("FunctionName")) or logical_id
        specs[handler] = FunctionSpec(
            logical_id=logical_id,
            name=str(name),
            handler=handler,
            memory=int(properties.get("MemorySize", 128)),
            timeout=int(properties.get("Timeout", 3)),
            environment=environment,
        )
    if required not in specs:
        raise TemplateError(f"{stack.name}: no function with handler {required}")
    return specs


def shared_environment(specs: dict[str, FunctionSpec]) -> dict[str, str]:
    """One process, one os.environ: the functions must agree on every variable."""
    merged: dict[str, str] = {}
    for spec in specs.values():
        for key, value in spec.environment.items():
            if key == "POWERTOOLS_SERVICE_NAME":
                continue
            if key in merged and merged[key] != value:
                raise TemplateError(
                    f"functions disagree on {key} ({merged[key]!r} vs {value!r}); local mode "
                    "runs them in one process with one environment"
                )
            merged[key] = value
    service = specs["handlers.api.handler"].environment.get("POWERTOOLS_SERVICE_NAME")
    if service:
        merged["POWERTOOLS_SERVICE_NAME"] = service
    return merged


class Functions:
    """Invoke handlers by their `module.function` name, one event at a time each."""

    def __init__(self, specs: dict[str, FunctionSpec], *, region: str, account_id: str) -> None:
        self._specs = specs
        self._region = region
        self._account = account_id
        self._locks = {handler: threading.Lock() for handler in specs}
        self._loaded: dict[str, Any] = {}
        if str(LAMBDA_SRC) not in sys.path:
            sys.path.insert(0, str(LAMBDA_SRC))

    def load_all(self) -> None:
        """Import every handler the template declares, so that one lambda_src lacks
        fails local mode's start rather than its first event."""
        for handler in self._specs:
            try:
                self._load(handler)
            except (ImportError, AttributeError) as exc:
                raise TemplateError(f"the template's handler {handler}: {exc}") from exc

    def _load(self, handler: str) -> Any:
        if handler not in self._loaded:
            module_name, function_name = handler.rsplit(".", 1)
            self._loaded[handler] = getattr(importlib.import_module(module_name), function_name)
        return self._loaded[handler]

    def invoke(self, handler: str, event: dict[str, Any]) -> Any:
        spec = self._specs[handler]
        function = self._load(handler)
        context = LambdaContext(
            function_name=spec.name,
            memory_limit_in_mb=spec.memory,
            invoked_function_arn=f"arn:aws:lambda:{self._region}:{self._account}:function:{spec.name}",
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=spec.timeout,
            log_group_name=f"/aws/lambda/{spec.name}",
        )
        with self._locks[handler]:
            return function(event, context)


def register_configurations(
    lambda_client: Any, resolver: Resolver, stack: Stack, specs: dict[str, FunctionSpec]
) -> None:
    """Each function's configuration in the emulator's Lambda, as the template declares it
    (name, role, handler, runtime, environment), so what reads a deployed function's
    configuration (scripts/resume_free_tier.py) reads it here too. Invoking them there
    is not emulated: they run in this process (Functions)."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("README", "local mode runs lambda_src/ in its own process\n")
    by_logical_id = {spec.logical_id: spec for spec in specs.values()}
    for logical_id, resource in stack.functions():
        spec = by_logical_id.get(logical_id)
        if spec is None:
            continue
        properties = resource.get("Properties", {})
        lambda_client.create_function(
            FunctionName=spec.name,
            Role=str(resolver.resolve(stack, properties["Role"])),
            Handler=spec.handler,
            Runtime=str(properties.get("Runtime", "python3.13")),
            Code={"ZipFile": code.getvalue()},
            Environment={"Variables": spec.environment},
            MemorySize=spec.memory,
            Timeout=spec.timeout,
        )
