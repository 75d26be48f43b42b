"""The Identity stack's reconcile of the web client's `org-*` identity providers: a
CloudFormation custom resource after every deploy that updates the client, and a
schedule (agent_builder/services/idp_reconcile.py says why and how)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import idp_reconcile_services

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    outcome = idp_reconcile_services().handle(
        event, remaining_ms=context.get_remaining_time_in_millis
    )
    return {"result": outcome}
