"""The web client as the Identity stack's template declares it, and the custom resource
requests CloudFormation sends the org-* provider reconcile (handlers/idp_reconcile.py)."""

from __future__ import annotations

from typing import Any

CONSOLE = "https://d111111abcdef8.cloudfront.net/"
# constructs/user_pool.py's web client, its intrinsics resolved (what
# tests/infra/test_idp_reconcile.py checks against the synthesized template).
TEMPLATE_CLIENT: dict[str, Any] = {
    "AccessTokenValidity": 60,
    "AllowedOAuthFlows": ["code"],
    "AllowedOAuthFlowsUserPoolClient": True,
    "AllowedOAuthScopes": ["openid", "email", "profile", "agent-builder-api/api"],
    "CallbackURLs": [CONSOLE],
    "ClientName": "agent-builder-web",
    "EnableTokenRevocation": True,
    "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    "GenerateSecret": False,
    "IdTokenValidity": 60,
    "LogoutURLs": [CONSOLE],
    "PreventUserExistenceErrors": "ENABLED",
    "RefreshTokenValidity": 43200,
    "SupportedIdentityProviders": ["COGNITO", "Google"],
    "TokenValidityUnits": {
        "AccessToken": "minutes",
        "IdToken": "minutes",
        "RefreshToken": "minutes",
    },
}
RESPONSE_URL = (
    "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/"
    "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/agent-builder-identity/x"
    "%7COrgIdpReconcile%7Creq?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc"
)
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/agent-builder-identity/x"


def as_cloudformation_sends(value: Any) -> Any:
    """A custom resource receives every scalar of its properties as a string."""
    if isinstance(value, dict):
        return {key: as_cloudformation_sends(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def client_create_arguments(client: dict[str, Any]) -> dict[str, Any]:
    """CreateUserPoolClient's arguments for the template's client (without UserPoolId)."""
    return {key: value for key, value in client.items() if key != "UserPoolId"}


def request(
    kind: str,
    *,
    client: dict[str, Any] | None = None,
    client_id: str = "client",
    physical_id: str | None = "org-identity-providers",
    old_client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudFormation custom resource request for Custom::OrgIdentityProviders."""
    properties = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:agent-builder-idpreconcile",
        "ServiceTimeout": "600",
        "Client": as_cloudformation_sends(client if client is not None else TEMPLATE_CLIENT),
        "ClientId": client_id,
    }
    event: dict[str, Any] = {
        "RequestType": kind,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": RESPONSE_URL,
        "StackId": STACK_ID,
        "RequestId": "3f1c0d6e-0000-4000-8000-000000000001",
        "LogicalResourceId": "OrgIdpReconcileB0E446DA",
        "ResourceType": "Custom::OrgIdentityProviders",
        "ResourceProperties": properties,
    }
    if kind != "Create" and physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if kind == "Update":
        event["OldResourceProperties"] = {
            **properties,
            "Client": as_cloudformation_sends(old_client or TEMPLATE_CLIENT),
        }
    return event


SCHEDULED_EVENT = {
    "version": "0",
    "id": "5d8f6c1e-0000-4000-8000-000000000001",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2025-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/agent-builder-identity-Hourly"],
    "detail": {},
}
