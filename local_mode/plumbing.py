"""The event plumbing AWS provides around the functions, on local timers.

The rules come from the template (AWS::Events::Rule and its function targets), not from
a list of handler names here.

- ECS -> EventBridge -> task-events function: a watcher polls the emulated cluster,
  starts new tasks (task_executor) and notices tasks stopped from outside; their state
  changes go to the function the ECS task-state-change rule targets.
- Tier 2: the clusters of other emulated accounts (customers') are watched the same
  way, their tasks run with that account's credentials; no events reach the platform.
- EventBridge rate(...) rules -> their function (the sweeper): a timer.
- EventBridge Scheduler one-time `at(...)` schedules: moto stores them and never
  fires them; here they fire when due (universal `aws-sdk` targets are called with
  their JSON Input) and are deleted when ActionAfterCompletion is DELETE.
- SNS -> SQS -> registration function: the template's AWS::SNS::Subscription of a
  queue is made in the emulator (moto delivers SNS to SQS itself), and each
  AWS::Lambda::EventSourceMapping of a queue is a poller that hands its messages to the
  mapped function as SQS Lambda events and deletes those it did not report failed (the
  queue's redrive policy moves the rest to its dead-letter queue). A Lambda subscription
  (SNS -> function) still becomes an HTTP subscription to the local server.
- CloudFormation's response bucket: custom resources answer at pre-signed-style URLs of
  `cloudformation-custom-resource-response-<region>` S3 buckets, exactly what the
  registration function accepts in AWS; `install_s3_response_transport` points urllib's
  https transport for those hosts, in this process only, at the emulator's S3, where the
  bucket exists and customer.py reads the answers back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from local_mode.assembly import Stack
from local_mode.task_executor import TaskExecutor, iso

log = logging.getLogger("local_mode.plumbing")

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
UNIVERSAL_TARGET = re.compile(r"^arn:aws[\w-]*:scheduler:::aws-sdk:([a-z0-9-]+):(\w+)$")
AT_EXPRESSION = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


@dataclass(frozen=True)
class RuleTarget:
    """An EventBridge rule of the template whose target is one of the functions."""

    logical_id: str
    handler: str
    period_seconds: float | None  # rate(...) rules; None for event-pattern rules
    event_pattern: dict[str, Any]


def rule_targets(stack: Stack) -> list[RuleTarget]:
    """The stack's enabled AWS::Events::Rule resources that invoke one of its functions,
    one per (rule, function) target: the sweeper's rate(1 minute), the ECS task state
    changes to the task-events function, and whatever the stacks add later."""
    handlers = {
        logical_id: str(resource.get("Properties", {}).get("Handler"))
        for logical_id, resource in stack.functions()
    }
    targets: list[RuleTarget] = []
    for logical_id, rule in stack.of_type("AWS::Events::Rule"):
        properties = rule.get("Properties", {})
        if properties.get("State", "ENABLED") != "ENABLED":
            continue
        period: float | None = None
        expression = properties.get("ScheduleExpression")
        if expression is not None:
            match = RATE.match(str(expression))
            if match is None:
                log.warning("rule %s: %s is not emulated (rate() only)", logical_id, expression)
                continue
            period = int(match.group(1)) * RATE_UNIT_SECONDS[match.group(2).rstrip("s")]
        for target in properties.get("Targets", []):
            arn = target.get("Arn")
            function = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            if function in handlers:
                targets.append(
                    RuleTarget(
                        logical_id=logical_id,
                        handler=handlers[function],
                        period_seconds=period,
                        event_pattern=dict(properties.get("EventPattern") or {}),
                    )
                )
    return targets


def is_ecs_task_state_change(target: RuleTarget) -> bool:
    pattern = target.event_pattern
    return "aws.ecs" in pattern.get("source", []) and "ECS Task State Change" in pattern.get(
        "detail-type", []
    )


class Ticker(threading.Thread):
    """Calls `tick` every `interval` seconds until stopped; a failing tick is logged."""

    def __init__(self, name: str, interval: float, tick: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._interval = interval
        self._tick = tick
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._tick()
            except Exception:
                log.exception("%s failed; retrying in %.1f s", self.name, self._interval)

    def stop(self) -> None:
        self._stopped.set()


class EventBus:
    """EventBridge's delivery to one target, in order, from one queue and thread."""

    def __init__(self, invoke: Callable[[str, dict[str, Any]], Any], handler: str) -> None:
        self._invoke = invoke
        self._handler = handler
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="event-bus", daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        self._idle.clear()
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                result = self._invoke(self._handler, event)
                detail = event.get("detail", {})
                log.info(
                    "task %s %s -> %s",
                    str(detail.get("taskArn", "")).rsplit("/", 1)[-1],
                    detail.get("lastStatus"),
                    result,
                )
            except Exception:
                # EventBridge retries (the rule sets 4 attempts); once more is enough here.
                log.exception("task-events function failed; retrying once")
                try:
                    self._invoke(self._handler, event)
                except Exception:
                    log.exception("task-events function failed again; event dropped")
            if self._queue.empty():
                self._idle.set()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


class EcsWatcher:
    """Polls the cluster for tasks to run and for tasks stopped by someone else."""

    def __init__(self, ecs: Any, cluster_arn: str, executor: TaskExecutor) -> None:
        self._ecs = ecs
        self._cluster = cluster_arn
        self._executor = executor

    def tick(self) -> None:
        arns: list[str] = []
        for page in self._ecs.get_paginator("list_tasks").paginate(
            cluster=self._cluster, desiredStatus="RUNNING"
        ):
            arns.extend(page.get("taskArns", []))
        new = [arn for arn in arns if arn not in self._executor.tasks]
        for start in range(0, len(new), 100):
            for task in self._ecs.describe_tasks(
                cluster=self._cluster, tasks=new[start : start + 100]
            )["tasks"]:
                self._executor.start(task)
        running = set(arns)
        gone = [t.task_arn for t in self._executor.running() if t.task_arn not in running]
        for start in range(0, len(gone), 100):
            for task in self._ecs.describe_tasks(
                cluster=self._cluster, tasks=gone[start : start + 100]
            )["tasks"]:
                if task.get("lastStatus") == "STOPPED" or task.get("desiredStatus") == "STOPPED":
                    self._executor.stop_requested(task["taskArn"], task.get("stoppedReason") or "")


class CustomerClusters:
    """Tier 2: the clusters of every other emulated account (customers who launched the
    onboarding template), watched like the platform's so their tasks run too.

    Each account gets its own executor, whose clients and runner processes use
    credentials moto attributes to that account, so a task's log lines land in the
    customer's log group. Nothing is delivered to the platform's task-events function:
    AWS sends no events from customer accounts; the platform reads their state with
    DescribeTasks through the assumed role (GET /runs/{id}).
    """

    def __init__(
        self,
        *,
        discover: Callable[[], list[str]],
        executor_for: Callable[[str], tuple[Any, TaskExecutor]],
    ) -> None:
        self._discover = discover
        self._executor_for = executor_for
        self._accounts: dict[str, tuple[Any, TaskExecutor]] = {}
        self._watchers: dict[tuple[str, str], EcsWatcher] = {}

    @property
    def executors(self) -> list[TaskExecutor]:
        return [executor for _, executor in self._accounts.values()]

    def tick(self) -> None:
        for account_id in self._discover():
            if account_id not in self._accounts:
                self._accounts[account_id] = self._executor_for(account_id)
                log.info("watching the ECS clusters of account %s", account_id)
            ecs, executor = self._accounts[account_id]
            for page in ecs.get_paginator("list_clusters").paginate():
                for cluster_arn in page.get("clusterArns", []):
                    key = (account_id, cluster_arn)
                    if key not in self._watchers:
                        self._watchers[key] = EcsWatcher(ecs, cluster_arn, executor)
                    self._watchers[key].tick()


class SchedulerEmulator:
    """Fires one-time schedules when due (moto only stores them)."""

    def __init__(self, scheduler: Any, client_for: Callable[[str], Any]) -> None:
        self._scheduler = scheduler
        self._client_for = client_for
        self._known: dict[str, dict[str, Any]] = {}
        self.fired = 0

    def tick(self) -> None:
        now = datetime.now(UTC)
        seen: set[str] = set()
        for group in self._groups():
            paginator = self._scheduler.get_paginator("list_schedules")
            for page in paginator.paginate(GroupName=group):
                for summary in page.get("Schedules", []):
                    arn = summary["Arn"]
                    seen.add(arn)
                    if arn not in self._known:
                        self._known[arn] = self._scheduler.get_schedule(
                            Name=summary["Name"], GroupName=group
                        )
        for arn in list(self._known):
            if arn not in seen:
                del self._known[arn]  # deleted by the product (the run stopped first)
                continue
            schedule = self._known[arn]
            due = due_time(schedule)
            if schedule.get("State", "ENABLED") == "ENABLED" and due is not None and due <= now:
                self._fire(schedule)
                del self._known[arn]

    def _groups(self) -> list[str]:
        groups: list[str] = []
        for page in self._scheduler.get_paginator("list_schedule_groups").paginate():
            groups.extend(group["Name"] for group in page.get("ScheduleGroups", []))
        return groups

    def _fire(self, schedule: dict[str, Any]) -> None:
        target = schedule.get("Target", {})
        name, group = schedule["Name"], schedule.get("GroupName", "default")
        match = UNIVERSAL_TARGET.match(str(target.get("Arn", "")))
        if match is None:
            log.warning("schedule %s: target %s is not emulated", name, target.get("Arn"))
        else:
            service, action = match.groups()
            try:
                call_universal_target(
                    self._client_for(service), action, target.get("Input") or "{}"
                )
                log.info("schedule %s fired: %s:%s", name, service, action)
            except Exception as exc:
                log.warning("schedule %s: %s:%s failed: %s", name, service, action, exc)
        self.fired += 1
        if schedule.get("ActionAfterCompletion") == "DELETE":
            with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                self._scheduler.delete_schedule(Name=name, GroupName=group)


def due_time(schedule: dict[str, Any]) -> datetime | None:
    match = AT_EXPRESSION.match(str(schedule.get("ScheduleExpression", "")))
    if match is None:
        return None  # rate()/cron() schedules are not emulated: the platform makes none
    zone = ZoneInfo(schedule.get("ScheduleExpressionTimezone") or "UTC")
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC)


def call_universal_target(client: Any, action: str, raw_input: str) -> Any:
    """Call `action` (camelCase, as in the target ARN) with the JSON Input, its keys
    matched to the API's parameter names without regard to case."""
    model = client.meta.service_model
    operation = next(
        (name for name in model.operation_names if name.lower() == action.lower()), None
    )
    if operation is None:
        raise ValueError(f"{model.service_name} has no operation {action}")
    members = {name.lower(): name for name in model.operation_model(operation).input_shape.members}
    document = json.loads(raw_input)
    params = {members.get(key.lower(), key): value for key, value in document.items()}
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    return getattr(client, snake)(**params)


def scheduled_event(account_id: str, region: str, rule_arn: str) -> dict[str, Any]:
    """What a scheduled EventBridge rule (rate(...)) sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": iso(datetime.now(UTC)),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def sns_lambda_event(message: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """An SNS HTTP notification, re-shaped as the event SNS gives a Lambda subscriber."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": message.get("Type", "Notification"),
                    "MessageId": message.get("MessageId"),
                    "TopicArn": message.get("TopicArn"),
                    "Subject": message.get("Subject"),
                    "Message": message.get("Message"),
                    "Timestamp": message.get("Timestamp"),
                    "SignatureVersion": message.get("SignatureVersion", "1"),
                    "Signature": message.get("Signature", ""),
                    "SigningCertUrl": message.get("SigningCertURL", ""),
                    "UnsubscribeUrl": message.get("UnsubscribeURL", ""),
                    "MessageAttributes": message.get("MessageAttributes", {}),
                },
            }
        ]
    }


# ---- SQS -> function ------------------------------------------------------------------------


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """ReceiveMessage's messages, shaped as the event an SQS event source mapping sends."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class QueuePoller:
    """One event source mapping: receive, invoke, delete what the function did not fail.

    A record the function lists in `batchItemFailures`, or every record when it raises,
    stays in the queue and comes back after its visibility timeout (and after the redrive
    policy's maxReceiveCount, lands in the dead-letter queue), as with Lambda's poller.
    """

    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        handler: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        batch_size: int = 1,
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._region = region
        self.handler = handler
        self._invoke = invoke
        self._batch = max(1, min(batch_size, 10))

    def tick(self) -> None:
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=self._batch,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                return
            try:
                result = self._invoke(
                    self.handler, sqs_lambda_event(messages, self._arn, self._region)
                )
            except Exception:
                log.exception("%s failed on a batch from %s; it returns", self.handler, self._arn)
                continue
            failed = {
                str(item.get("itemIdentifier"))
                for item in (result or {}).get("batchItemFailures", [])
                if isinstance(item, dict)
            }
            for message in messages:
                if message["MessageId"] not in failed:
                    self._sqs.delete_message(
                        QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"]
                    )


# ---- CloudFormation's response bucket ---------------------------------------------------


RESPONSE_BUCKET_PREFIX = "cloudformation-custom-resource-response-"
_S3_HOST = re.compile(r"^s3(?:[.-][a-z]{2}(?:-gov)?-[a-z]+-[0-9])?\.amazonaws\.com$")


def response_bucket(region: str) -> str:
    """CloudFormation's response bucket of `region` (its name has no dashes in the region)."""
    return RESPONSE_BUCKET_PREFIX + region.replace("-", "")


def emulated_s3_url(url: str, endpoint: str) -> str | None:
    """`url`, if it is in a CloudFormation response bucket, as a path-style emulator URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.startswith(RESPONSE_BUCKET_PREFIX) and ".s3" in host:
        bucket, _, rest = host.partition(".")
        if not _S3_HOST.match(rest):
            return None
        path = f"/{bucket}{parts.path}"
    elif _S3_HOST.match(host) and parts.path.startswith("/" + RESPONSE_BUCKET_PREFIX):
        path = parts.path
    else:
        return None
    # No pre-signature to check locally: the query is dropped.
    return f"{endpoint.rstrip('/')}{path}"


class _ResponseBucketTransport(urllib.request.BaseHandler):
    """Runs before urllib's own https request processing: a request into a response
    bucket is re-addressed to the emulator's S3 (plain http on loopback)."""

    handler_order = 100

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint

    def https_request(self, request: urllib.request.Request) -> urllib.request.Request:
        target = emulated_s3_url(request.full_url, self._endpoint)
        if target is not None:
            request.full_url = target
        return request


def install_s3_response_transport(endpoint: str) -> None:
    """In this process, https requests to CloudFormation's response buckets go to the
    emulator's S3. Process-wide urllib state: local mode's process only, never Lambda."""
    urllib.request.install_opener(urllib.request.build_opener(_ResponseBucketTransport(endpoint)))
