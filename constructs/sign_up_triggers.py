"""The user pool's sign-up triggers, as control-plane functions.

They live in the control plane, beside the profiles table they write; the Identity stack
names them by ARN (constructs/control_plane_functions.py fixes their names), because the
control plane already depends on it and a reference back would be a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

from constructs.control_plane_functions import (
    POST_CONFIRMATION,
    PRE_SIGN_UP,
    ControlPlaneFunctions,
)
from constructs.python_function import PythonFunction

# Cognito waits at most 5 seconds for a trigger.
TRIGGER_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class SignUpTriggerFunctions:
    pre_sign_up: PythonFunction
    post_confirmation: PythonFunction


def add_sign_up_triggers(
    functions: ControlPlaneFunctions,
    *,
    environment: Mapping[str, Mapping[str, str]],
    user_pool: cognito.IUserPool,
    profiles: dynamodb.ITable,
) -> SignUpTriggerFunctions:
    """Both triggers: invoked by `user_pool` only, writing only profiles; pre sign-up may
    also find, create and link users of that pool (nothing else of Cognito)."""
    triggers = SignUpTriggerFunctions(
        pre_sign_up=functions.add(
            PRE_SIGN_UP,
            handler="handlers.sign_up.pre_sign_up",
            description="Cognito pre sign-up: screens e-mail domains, links federated sign-ins",
            environment=environment[PRE_SIGN_UP],
            timeout_seconds=TRIGGER_TIMEOUT_SECONDS,
        ),
        post_confirmation=functions.add(
            POST_CONFIRMATION,
            handler="handlers.sign_up.post_confirmation",
            description="Cognito post confirmation: creates the user's profile",
            environment=environment[POST_CONFIRMATION],
            timeout_seconds=TRIGGER_TIMEOUT_SECONDS,
        ),
    )
    for trigger in (triggers.pre_sign_up, triggers.post_confirmation):
        trigger.function.add_permission(
            "InvokedByUserPool",
            principal=iam.ServicePrincipal("cognito-idp.amazonaws.com"),
            source_arn=user_pool.user_pool_arn,
            source_account=Stack.of(functions).account,
        )
        profiles.grant(trigger.role, "dynamodb:UpdateItem")
    # Linking a federated sign-in: find the e-mail's user, or create it, then link.
    user_pool.grant(
        triggers.pre_sign_up.role,
        "cognito-idp:ListUsers",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminSetUserPassword",
        "cognito-idp:AdminLinkProviderForUser",
    )
    return triggers


__all__ = ["TRIGGER_TIMEOUT_SECONDS", "SignUpTriggerFunctions", "add_sign_up_triggers"]
