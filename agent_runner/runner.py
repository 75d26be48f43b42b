"""The agent runner: one Bedrock ConverseStream call per ECS task.

Reads the run's request from the artifacts bucket (platform mode) or from the
AGENT_REQUEST variable (customer mode: Tier 2 runs in a customer's account, where there
is no platform bucket), asks the agent's model once, prints the answer while it streams
in as `output` events (one JSON line each; the awslogs driver turns each line into the
log event users watch) and writes result.json where there is a bucket for it; the
`run.finished` event carries the same outcome and the model's token usage, and is the
only record in customer mode. The contract (env vars, request and result JSON,
exit codes) is lambda_src/CONTRACT.md, "Agent runner".
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1

# Platform mode: the request and the result live in the platform's artifacts bucket.
REQUIRED_ENV = ("RUN_ID", "ARTIFACTS_BUCKET", "REQUEST_KEY", "RESULT_KEY", "AWS_REGION")
# Customer mode (AGENT_REQUEST present, whatever its value): the request comes in the
# environment (lambda_src customer_runs registers it in the task definition), and a
# result is written only if ARTIFACTS_BUCKET and RESULT_KEY are both given.
REQUEST_ENV = "AGENT_REQUEST"
REQUIRED_ENV_INLINE = ("RUN_ID", "AWS_REGION")
# The largest maxOutputTokens the platform config accepts (stacks/config.py). The API
# enforces the configured cap; MAX_OUTPUT_TOKENS (optional) lets the task definition
# repeat it here so a request that slipped past the API still cannot exceed it.
MAX_TOKENS_CEILING = 64_000
# A request is at most 16 KiB of instructions and 8 KiB of input; anything far larger
# is not one of ours and is refused before it is parsed.
MAX_REQUEST_BYTES = 256 * 1024
STOPPED_MESSAGE = "stopped by the platform (time limit)"
# A customer's account has no platform time limit: its SIGTERM is the customer's StopTask
# (or ECS stopping the task), so the platform's message would be wrong there.
STOPPED_MESSAGE_INLINE = "stopped by ECS (SIGTERM: StopTask or the task was stopped)"

# Standard retry mode backs off on throttling with jitter. A model answer can take
# minutes, so Bedrock's read timeout is long; the platform's time limit bounds the run.
S3_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=15
)
BEDROCK_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=300
)


class SettingsError(Exception):
    """The task's environment is incomplete or invalid."""


class RunFailed(Exception):
    """The run cannot succeed; `code` and the message go into result.json."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Settings:
    run_id: str
    region: str
    max_tokens_cap: int
    bucket: str | None = None
    request_key: str | None = None
    result_key: str | None = None
    # The request document itself (customer mode): the prompt, so never in a repr.
    inline_request: str | None = field(default=None, repr=False)

    @property
    def writes_result(self) -> bool:
        return bool(self.bucket and self.result_key)

    @property
    def uses_s3(self) -> bool:
        return self.inline_request is None or self.writes_result


@dataclass(frozen=True)
class AgentRequest:
    agent_name: str
    model: str
    instructions: str
    input: str
    max_tokens: int
    temperature: float | None


def load_settings(environ: Mapping[str, str]) -> Settings:
    # Present, even empty, means customer mode: an empty request is then refused as
    # invalid (a FAILED run saying why) rather than mistaken for a platform run.
    inline = REQUEST_ENV in environ
    required = REQUIRED_ENV_INLINE if inline else REQUIRED_ENV
    missing = [name for name in required if not environ.get(name, "").strip()]
    if missing:
        mode = f" ({REQUEST_ENV} is set)" if inline else ""
        raise SettingsError(f"missing required environment variable(s){mode}: {', '.join(missing)}")
    cap = MAX_TOKENS_CEILING
    raw_cap = environ.get("MAX_OUTPUT_TOKENS", "").strip()
    if raw_cap:
        try:
            cap = int(raw_cap)
        except ValueError:
            raise SettingsError("MAX_OUTPUT_TOKENS must be an integer") from None
        if not 1 <= cap <= MAX_TOKENS_CEILING:
            raise SettingsError(f"MAX_OUTPUT_TOKENS must be between 1 and {MAX_TOKENS_CEILING}")

    def optional(name: str) -> str | None:
        return environ.get(name, "").strip() or None

    if inline and bool(optional("ARTIFACTS_BUCKET")) != bool(optional("RESULT_KEY")):
        # One without the other is a broken task definition; running would silently
        # drop the result the operator meant to keep.
        raise SettingsError(
            f"with {REQUEST_ENV}, ARTIFACTS_BUCKET and RESULT_KEY are set together or not at all"
        )
    return Settings(
        run_id=environ["RUN_ID"].strip(),
        region=environ["AWS_REGION"].strip(),
        max_tokens_cap=cap,
        bucket=optional("ARTIFACTS_BUCKET"),
        request_key=optional("REQUEST_KEY"),
        result_key=optional("RESULT_KEY"),
        inline_request=environ[REQUEST_ENV] if inline else None,
    )


def _invalid(message: str) -> RunFailed:
    return RunFailed("INVALID_REQUEST", message)


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{name} must be a JSON object")
    return value


def _string(container: dict[str, Any], key: str, name: str, *, allow_empty: bool = False) -> str:
    value = container.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _invalid(f"{name} must be a {'' if allow_empty else 'non-empty '}string")
    return value


def parse_request(body: bytes, *, run_id: str, max_tokens_cap: int) -> AgentRequest:
    """Validate request.json. A maxTokens above the cap is refused, never clamped: the
    API already enforces the cap, so such a request is a bug or tampering, and quietly
    running it with a different limit would hide that."""
    if len(body) > MAX_REQUEST_BYTES:
        raise _invalid(f"request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _invalid("request is not valid JSON") from None
    request = _object(document, "request")
    if request.get("runId") != run_id:
        raise _invalid("request runId does not match this run")
    agent = _object(request.get("agent"), "agent")
    parameters = _object(agent.get("parameters", {}), "agent.parameters")

    max_tokens = parameters.get("maxTokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _invalid("agent.parameters.maxTokens must be an integer")
    if not 1 <= max_tokens <= max_tokens_cap:
        raise _invalid(f"agent.parameters.maxTokens must be between 1 and {max_tokens_cap}")

    temperature = parameters.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise _invalid("agent.parameters.temperature must be a number")
        if not 0 <= temperature <= 1:
            raise _invalid("agent.parameters.temperature must be between 0 and 1")
        temperature = float(temperature)

    name = agent.get("name", "")
    return AgentRequest(
        agent_name=name if isinstance(name, str) else "",
        model=_string(agent, "model", "agent.model"),
        instructions=_string(agent, "instructions", "agent.instructions", allow_empty=True),
        input=_string(request, "input", "input"),
        max_tokens=max_tokens,
        temperature=temperature,
    )


def result_document(
    run_id: str,
    *,
    status: str,
    output: str | None = None,
    stop_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
    error: RunFailed | None = None,
) -> dict[str, Any]:
    usage = usage or {}
    document: dict[str, Any] = {
        "runId": run_id,
        "status": status,
        "output": output,
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": int(usage.get("inputTokens", 0)),
            "outputTokens": int(usage.get("outputTokens", 0)),
        },
    }
    if error is not None:
        # Same shape as the API's errors, so the API can pass it on unchanged.
        document["error"] = {"code": error.code, "message": error.message}
    return document


def log_event(event: str, **fields: Any) -> None:
    """One JSON line: the runner prints nothing else (never the prompt or the input)."""
    print(json.dumps({"event": event, **fields}, separators=(",", ":")), flush=True)


@dataclass
class Answer:
    """The model's answer as it arrives: its text, why it stopped, the tokens it used."""

    text: str = ""
    stop_reason: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)

    def add(self, text: str, output: OutputWriter) -> None:
        self.text += text
        output.write(text)


class OutputWriter:
    """Prints the model's text as `output` events while it streams in.

    The text only ever appears JSON-encoded inside an event's `text` field, so nothing a
    model writes (a prompt-injected `{"event":"run.finished",...}` line included) can
    pass for one of the runner's own events: every line the runner prints is an event
    of its own making. Text is flushed at each line end, and otherwise at least every
    FLUSH_SECONDS or FLUSH_CHARS, so a reader sees it as it is written without a log
    event per token. Joined in order, the events' texts are the answer.
    """

    FLUSH_SECONDS = 1.0
    FLUSH_CHARS = 2000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending = ""
        self._last = clock()

    def write(self, text: str) -> None:
        self._pending += text
        cut = self._pending.rfind("\n") + 1
        if cut:
            self._emit(self._pending[:cut])
            self._pending = self._pending[cut:]
        if self._pending and (
            len(self._pending) >= self.FLUSH_CHARS
            or self._clock() - self._last >= self.FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""

    def _emit(self, text: str) -> None:
        log_event("output", text=text)
        self._last = self._clock()


class Runner:
    def __init__(
        self, settings: Settings, *, s3: S3Client | None, bedrock: BedrockRuntimeClient
    ) -> None:
        if s3 is None and settings.uses_s3:
            raise ValueError("this run reads or writes S3: an S3 client is required")
        self._settings = settings
        self._s3 = s3
        self._bedrock = bedrock
        # The outcome is recorded: result.json written or, with no bucket, run.finished printed.
        self._result_written = False
        self._stopping = False
        self._output = OutputWriter()

    def run(self) -> int:
        run_id = self._settings.run_id
        output = self._output
        try:
            request = self._read_request()
            log_event(
                "run.started",
                runId=run_id,
                agent=request.agent_name,
                model=request.model,
                maxTokens=request.max_tokens,
                temperature=request.temperature,
            )
            answer = self._converse(request, output)
        except RunFailed as exc:
            output.flush()  # what the model wrote before it failed is still shown
            return self._fail(exc)
        except Exception as exc:
            output.flush()
            # Anything unforeseen still leaves a result behind; the message names only
            # the exception type, as its text could echo request content.
            return self._fail(RunFailed("INTERNAL_ERROR", f"runner error: {type(exc).__name__}"))

        result = result_document(
            run_id,
            status="SUCCEEDED",
            output=answer.text,
            stop_reason=answer.stop_reason,
            usage=answer.usage,
        )
        return EXIT_SUCCEEDED if self._finish(result, model=request.model) else EXIT_FAILED

    def handle_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """ECS StopTask sends SIGTERM and SIGKILLs 30 s later: record why and leave now."""
        if self._result_written or self._stopping:
            return  # the outcome is already recorded (or being recorded): let it finish
        self._stopping = True
        self._output.flush()  # the answer so far stays readable
        message = (
            STOPPED_MESSAGE if self._settings.inline_request is None else STOPPED_MESSAGE_INLINE
        )
        log_event("run.stopped", runId=self._settings.run_id, reason=message)
        error = RunFailed("STOPPED", message)
        self._finish(result_document(self._settings.run_id, status="FAILED", error=error))
        raise SystemExit(EXIT_FAILED)

    def _read_request(self) -> AgentRequest:
        settings = self._settings
        if settings.inline_request is not None:
            return self._parse_inline(settings.inline_request)
        # Platform mode: load_settings required both names, Runner() the client.
        assert self._s3 is not None and settings.bucket and settings.request_key
        try:
            obj = self._s3.get_object(Bucket=settings.bucket, Key=settings.request_key)
            body = obj["Body"].read(MAX_REQUEST_BYTES + 1)
        except (ClientError, BotoCoreError) as exc:
            raise RunFailed(
                "REQUEST_UNAVAILABLE", f"could not read the run request: {exc}"
            ) from exc
        return parse_request(body, run_id=settings.run_id, max_tokens_cap=settings.max_tokens_cap)

    def _parse_inline(self, value: str) -> AgentRequest:
        # surrogateescape gives back the bytes the kernel passed, as os.environ decoded
        # them; anything else that is not UTF-8 is refused like invalid JSON.
        try:
            body = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise _invalid(f"{REQUEST_ENV}: request is not valid JSON") from None
        try:
            return parse_request(
                body, run_id=self._settings.run_id, max_tokens_cap=self._settings.max_tokens_cap
            )
        except RunFailed as exc:
            # Name the source: the customer reading the log has no request.json to look at.
            raise RunFailed(exc.code, f"{REQUEST_ENV}: {exc.message}") from None

    def _converse(self, request: AgentRequest, output: OutputWriter) -> Answer:
        """ConverseStream: the answer is printed while the model writes it."""
        inference: dict[str, Any] = {"maxTokens": request.max_tokens}
        if request.temperature is not None:
            inference["temperature"] = request.temperature
        call: dict[str, Any] = {
            "modelId": request.model,
            "messages": [{"role": "user", "content": [{"text": request.input}]}],
            "inferenceConfig": inference,
        }
        if request.instructions.strip():
            # Bedrock refuses an empty system block; no instructions means no system prompt.
            call["system"] = [{"text": request.instructions}]
        answer = Answer()
        block: int | None = None
        try:
            response = self._bedrock.converse_stream(**call)
            for event in response["stream"]:
                if "contentBlockDelta" in event:
                    delta = event["contentBlockDelta"]
                    text = delta.get("delta", {}).get("text")
                    if not text:
                        continue  # reasoning or tool-use deltas: not the answer
                    index = delta.get("contentBlockIndex", 0)
                    if block is not None and index != block:
                        answer.add("\n", output)  # a new text block starts a new line
                    block = index
                    answer.add(text, output)
                elif "messageStop" in event:
                    answer.stop_reason = event["messageStop"].get("stopReason")
                elif "metadata" in event:
                    answer.usage = event["metadata"].get("usage", {})
        except (ClientError, BotoCoreError) as exc:
            # EventStreamError (a failure mid-answer) is a ClientError too.
            raise RunFailed("MODEL_ERROR", f"the model call failed: {exc}") from exc
        output.flush()
        return answer

    def _fail(self, error: RunFailed) -> int:
        self._finish(result_document(self._settings.run_id, status="FAILED", error=error))
        return EXIT_FAILED

    def _finish(self, document: Mapping[str, Any], *, model: str | None = None) -> bool:
        """Record the outcome: the run.finished line, then result.json if there is a bucket.

        The line carries everything result.json does but the output (already printed),
        so without a bucket (customer mode) it is the result."""
        fields: dict[str, Any] = {"runId": document["runId"], "status": document["status"]}
        if model is not None:
            fields["model"] = model
        fields |= {"stopReason": document["stopReason"], "usage": document["usage"]}
        if "error" in document:
            fields |= {
                "errorCode": document["error"]["code"],
                "error": document["error"]["message"],
            }
        if not self._settings.writes_result:
            # Recorded before the line is printed, so a SIGTERM from here on leaves it be.
            self._result_written = True
            log_event("run.finished", **fields)
            return True
        log_event("run.finished", **fields)
        return self._write_result(document)

    def _write_result(self, document: Mapping[str, Any]) -> bool:
        assert self._s3 is not None and self._settings.bucket and self._settings.result_key
        try:
            self._s3.put_object(
                Bucket=self._settings.bucket,
                Key=self._settings.result_key,
                Body=json.dumps(document).encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            log_event("result.write_failed", runId=self._settings.run_id, error=str(exc))
            return False
        self._result_written = True
        return True


def make_clients(region: str, *, s3: bool = True) -> tuple[S3Client | None, BedrockRuntimeClient]:
    return (
        boto3.client("s3", region_name=region, config=S3_CONFIG) if s3 else None,
        boto3.client("bedrock-runtime", region_name=region, config=BEDROCK_CONFIG),
    )


def main(
    environ: Mapping[str, str] | None = None,
    *,
    clients: tuple[S3Client | None, BedrockRuntimeClient] | None = None,
) -> int:
    try:
        settings = load_settings(os.environ if environ is None else environ)
    except SettingsError as exc:
        print(f"agent runner cannot start: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    # Customer mode without a result target makes no S3 client at all: nothing to call.
    s3, bedrock = clients or make_clients(settings.region, s3=settings.uses_s3)
    runner = Runner(settings, s3=s3, bedrock=bedrock)
    previous = signal.signal(signal.SIGTERM, runner.handle_sigterm)
    try:
        return runner.run()
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
