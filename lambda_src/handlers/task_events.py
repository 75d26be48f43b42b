"""EventBridge "ECS Task State Change" on the test cluster -> the run record."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import task_event_services

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    if event.get("detail-type") != "ECS Task State Change":
        logger.warning("not a task state change", detail_type=event.get("detail-type"))
        return {"result": "ignored"}
    return {"result": task_event_services().handle(event.get("detail") or {})}
