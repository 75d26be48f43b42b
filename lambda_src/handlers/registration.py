"""SNS: customers' onboarding stacks' custom-resource messages -> connect / disconnect."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import registration_services

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    results = []
    for record in event.get("Records") or []:
        message = (record.get("Sns") or {}).get("Message")
        results.append(registration_services().handle(message if isinstance(message, str) else ""))
    return {"results": results}
