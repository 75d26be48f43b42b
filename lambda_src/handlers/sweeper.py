"""Every minute: stop test tasks that are past the time limit (the backstop)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import sweeper_services

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweeper_services().sweep()
    logger.info(
        "sweep done", checked=report.checked, stopped=len(report.stopped), failed=len(report.failed)
    )
    return {"checked": report.checked, "stopped": report.stopped, "failed": report.failed}
