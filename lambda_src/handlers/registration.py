"""SQS (subscribed to the registration topic): customers' onboarding stacks'
custom-resource messages -> connect / disconnect.

The queue's subscription delivers SNS's JSON envelope (raw message delivery off): the
custom resource's request is the envelope's `Message`. A direct SNS event (`Sns`) is
read the same way. A record that raises is reported as a batch item failure, so only it
returns to the queue (and after maxReceiveCount to the dead-letter queue)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import registration_services

logger = Logger()


def _message(record: dict[str, Any]) -> str:
    if isinstance(record.get("Sns"), dict):
        message = record["Sns"].get("Message")
        return message if isinstance(message, str) else ""
    try:
        envelope = json.loads(record.get("body") or "")
    except (TypeError, ValueError):
        return ""
    message = envelope.get("Message") if isinstance(envelope, dict) else None
    if not isinstance(envelope, dict) or envelope.get("Type") != "Notification":
        return ""
    return message if isinstance(message, str) else ""


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[Any]]:
    results: list[str] = []
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        try:
            results.append(registration_services().handle(_message(record)))
        except Exception:
            if "messageId" not in record:
                raise  # SNS: Lambda's own retry
            logger.exception("registration record failed; it returns to the queue")
            failures.append({"itemIdentifier": str(record["messageId"])})
            results.append("retry")
    return {"results": results, "batchItemFailures": failures}
