"""What an ECS task does locally: moto records tasks but never runs a container.

Each task the watcher finds runs the real agent runner (agent_runner/runner.py) as a
subprocess with the task definition's container environment plus the RunTask
overrides, against the emulator (and the local Converse stand-in for Bedrock). Its
output goes, line by line, to the log stream the awslogs driver would write
(`<awslogs-stream-prefix>/<container>/<taskId>`). When the process exits the task is
stopped in moto with the exit code, as ECS does; a task stopped from outside (the
time limit's schedule, the sweeper) gets SIGTERM, then SIGKILL after a grace period.
Each state change is handed to `deliver` as EventBridge's "ECS Task State Change".
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_mode.assembly import ROOT

RUNNER = ROOT / "agent_runner" / "runner.py"
EXITED_REASON = "Essential container in task exited"

log = logging.getLogger("local_mode.tasks")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class LocalTask:
    task_arn: str
    cluster_arn: str
    started_by: str
    described: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    process: subprocess.Popen[bytes] | None = None
    finishing: bool = False  # local mode itself is stopping it (the process exited)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]


def task_state_change(
    task: LocalTask, *, last_status: str, desired_status: str, account_id: str, region: str
) -> dict[str, Any]:
    """The event EventBridge delivers for an ECS task state change."""
    described = task.described
    containers = []
    for container in described.get("containers", []):
        entry: dict[str, Any] = {
            "containerArn": container.get("containerArn"),
            "lastStatus": last_status if last_status != "PENDING" else "PENDING",
            "name": container.get("name"),
            "image": container.get("image"),
            "taskArn": task.task_arn,
        }
        if last_status == "STOPPED" and task.exit_code is not None:
            entry["exitCode"] = task.exit_code
        containers.append(entry)
    now = datetime.now(UTC)
    detail: dict[str, Any] = {
        "clusterArn": task.cluster_arn,
        "taskArn": task.task_arn,
        "taskDefinitionArn": described.get("taskDefinitionArn"),
        "startedBy": task.started_by,
        "group": described.get("group"),
        "launchType": described.get("launchType"),
        "capacityProviderName": described.get("capacityProviderName"),
        "lastStatus": last_status,
        "desiredStatus": desired_status,
        "containers": containers,
        "overrides": described.get("overrides", {}),
        "createdAt": iso(task.created_at),
        "updatedAt": iso(now),
        "version": {"PENDING": 1, "RUNNING": 2, "STOPPED": 3}.get(last_status, 1),
        "cpu": described.get("cpu"),
        "memory": described.get("memory"),
    }
    if task.started_at is not None:
        detail["startedAt"] = iso(task.started_at)
    if last_status == "STOPPED":
        detail["stoppedAt"] = iso(task.stopped_at or now)
        detail["stoppingAt"] = detail["stoppedAt"]
        detail["stoppedReason"] = task.stopped_reason
        detail["stopCode"] = task.stop_code
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account_id,
        "time": iso(now),
        "region": region,
        "resources": [task.task_arn],
        "detail": {key: value for key, value in detail.items() if value is not None},
    }


class TaskExecutor:
    def __init__(
        self,
        *,
        ecs: Any,
        logs: Any,
        deliver: Callable[[dict[str, Any]], None],
        stamp: Callable[..., None],
        process_environment: dict[str, str],
        account_id: str,
        region: str,
        stop_grace_seconds: float,
        command: list[str] | None = None,
    ) -> None:
        self._command = command or [sys.executable, str(RUNNER)]
        self._ecs = ecs
        self._logs = logs
        self._deliver = deliver
        self._stamp = stamp
        self._base_env = process_environment
        self._account = account_id
        self._region = region
        self._grace = stop_grace_seconds
        self._task_definitions: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, LocalTask] = {}
        self._lock = threading.Lock()

    def start(self, described: dict[str, Any]) -> None:
        arn = described["taskArn"]
        with self._lock:
            if arn in self.tasks:
                return
            task = LocalTask(
                task_arn=arn,
                cluster_arn=described["clusterArn"],
                started_by=described.get("startedBy", ""),
                described=described,
                created_at=datetime.now(UTC),
            )
            self.tasks[arn] = task
        self._stamp(arn, created_at=task.created_at)
        threading.Thread(
            target=self._run, args=(task,), name=f"task-{task.task_id}", daemon=True
        ).start()

    def stop_requested(self, task_arn: str, reason: str) -> None:
        """StopTask happened in the emulator (schedule, sweeper, API): end the process."""
        task = self.tasks.get(task_arn)
        if task is None or task.finishing or task.stop_requested.is_set():
            return
        task.stopped_reason = reason
        task.stop_code = "UserInitiated"
        task.stop_requested.set()
        process = task.process
        if process is not None and process.poll() is None:
            log.info("task %s stopped from outside: SIGTERM to the runner", task.task_id)
            process.send_signal(signal.SIGTERM)
            threading.Thread(target=self._kill_later, args=(task,), daemon=True).start()

    def _kill_later(self, task: LocalTask) -> None:
        process = task.process
        if process is None:
            return
        try:
            process.wait(timeout=self._grace)
        except subprocess.TimeoutExpired:
            log.warning("task %s ignored SIGTERM for %.0f s: SIGKILL", task.task_id, self._grace)
            process.kill()

    def running(self) -> list[LocalTask]:
        return [task for task in self.tasks.values() if not task.done.is_set()]

    def shutdown(self) -> None:
        """Local mode is stopping: no runner outlives it."""
        for task in self.running():
            process = task.process
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=5)

    # ---- one task's life -------------------------------------------------------------

    def _event(self, task: LocalTask, last_status: str, desired_status: str) -> None:
        self._deliver(
            task_state_change(
                task,
                last_status=last_status,
                desired_status=desired_status,
                account_id=self._account,
                region=self._region,
            )
        )

    def _run(self, task: LocalTask) -> None:
        try:
            self._event(task, "PENDING", "RUNNING")
            if task.stop_requested.is_set():
                self._finish(task)
                return
            container, environment = self._container(task)
            stream = self._log_stream(task, container)
            task.started_at = datetime.now(UTC)
            self._stamp(task.task_arn, started_at=task.started_at)
            task.process = subprocess.Popen(
                self._command,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(RUNNER.parent),
            )
            if task.stop_requested.is_set():  # stopped while we were starting it
                task.process.send_signal(signal.SIGTERM)
                threading.Thread(target=self._kill_later, args=(task,), daemon=True).start()
            self._event(task, "RUNNING", "RUNNING")
            self._pump_logs(task, stream)
            code = task.process.wait()
            task.exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128+N
            self._finish(task)
        except Exception:
            log.exception("task %s failed locally", task.task_id)
            if task.exit_code is None and task.started_at is not None:
                task.exit_code = 1
            task.stopped_reason = task.stopped_reason or "local mode could not run the task"
            task.stop_code = task.stop_code or "TaskFailedToStart"
            self._finish(task)
        finally:
            task.done.set()

    def _finish(self, task: LocalTask) -> None:
        task.finishing = True
        if not task.stop_requested.is_set():
            task.stopped_reason = task.stopped_reason or EXITED_REASON
            task.stop_code = task.stop_code or "EssentialContainerExited"
            try:
                self._ecs.stop_task(
                    cluster=task.cluster_arn, task=task.task_arn, reason=task.stopped_reason
                )
            except Exception:
                log.exception("could not stop task %s in the emulator", task.task_id)
        task.stopped_at = datetime.now(UTC)
        self._stamp(
            task.task_arn,
            stopped_at=task.stopped_at,
            stopping_at=task.stopped_at,
            execution_stopped_at=task.stopped_at,
            stop_code=task.stop_code,
            exit_code=task.exit_code,
        )
        self._event(task, "STOPPED", "STOPPED")
        log.info(
            "task %s (run %s) stopped: exit %s, %s",
            task.task_id,
            task.started_by,
            task.exit_code,
            task.stopped_reason,
        )

    def _container(self, task: LocalTask) -> tuple[dict[str, Any], dict[str, str]]:
        definition_arn = task.described["taskDefinitionArn"]
        if definition_arn not in self._task_definitions:
            self._task_definitions[definition_arn] = self._ecs.describe_task_definition(
                taskDefinition=definition_arn
            )["taskDefinition"]
        definition = self._task_definitions[definition_arn]
        containers = definition.get("containerDefinitions", [])
        container = next((c for c in containers if c.get("essential", True)), containers[0])
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",
            **{item["name"]: item["value"] for item in container.get("environment", [])},
        }
        for override in task.described.get("overrides", {}).get("containerOverrides", []):
            if override.get("name") == container.get("name"):
                environment.update(
                    {item["name"]: item["value"] for item in override.get("environment", [])}
                )
        environment.update(self._base_env)
        return container, environment

    def _log_stream(self, task: LocalTask, container: dict[str, Any]) -> tuple[str, str] | None:
        configuration = container.get("logConfiguration") or {}
        options = configuration.get("options") or {}
        if configuration.get("logDriver") != "awslogs" or "awslogs-group" not in options:
            return None
        group = options["awslogs-group"]
        prefix = options.get("awslogs-stream-prefix")
        name = f"{prefix}/{container['name']}/{task.task_id}" if prefix else task.task_id
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_stream(logGroupName=group, logStreamName=name)
        return group, name

    def _pump_logs(self, task: LocalTask, stream: tuple[str, str] | None) -> None:
        process = task.process
        assert process is not None and process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if stream is None:
                continue
            try:
                self._logs.put_log_events(
                    logGroupName=stream[0],
                    logStreamName=stream[1],
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": line}],
                )
            except Exception:
                log.exception("could not write a log line of task %s", task.task_id)
