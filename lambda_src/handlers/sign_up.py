"""Cognito's pre sign-up and post confirmation triggers (two functions, one module).

Cognito passes the event and expects it back; an exception refuses the sign-up and its
message reaches the user ("PreSignUp failed with error ...").
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import sign_up_services

logger = Logger()


@logger.inject_lambda_context
def pre_sign_up(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sign_up_services().pre_sign_up(event)


@logger.inject_lambda_context
def post_confirmation(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sign_up_services().post_confirmation(event)
