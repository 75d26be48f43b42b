"""The control plane's HTTP API: its routes, their throttles, auth and access logs.

One route table (ROUTES) is the whole surface: the routes, the function that serves
each, the CORS methods and the per-route throttles are all derived from it. tests/infra
checks it against dist/openapi.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from constructs.nag import LOG_GROUP_KMS_REASON, checkov_skip


@dataclass(frozen=True)
class Throttle:
    """API Gateway's steady-state requests per second and burst, for the whole stage or a route."""

    rate_limit: int
    burst_limit: int


# The whole API; and the routes that start paid work or call into a customer's account
# several times (assume, probe), which get a tighter one of their own.
STAGE_THROTTLE = Throttle(rate_limit=50, burst_limit=100)
COSTLY_ROUTE_THROTTLE = Throttle(rate_limit=5, burst_limit=10)


# The functions behind the API: the core one, and Tier 3's (every path under /org), which
# has its own cold start and its own permissions (only it manages identity providers).
CORE, ORGANIZATIONS = "core", "organizations"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    throttle: Throttle | None = None  # None: the stage's

    @property
    def function(self) -> str:
        """Which function serves the route (CORE or ORGANIZATIONS)."""
        return ORGANIZATIONS if self.path == "/org" or self.path.startswith("/org/") else CORE

    @property
    def key(self) -> str:
        """API Gateway's route key, e.g. `GET /me`."""
        return f"{self.method} {self.path}"


# Every route of the HTTP API contract (DESIGN.md) that the control plane serves.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/me"),
    Route("POST", "/agents"),
    Route("GET", "/agents"),
    Route("GET", "/agents/{agentId}"),
    Route("DELETE", "/agents/{agentId}"),
    Route("POST", "/agents/{agentId}/tests", COSTLY_ROUTE_THROTTLE),
    Route("POST", "/agents/{agentId}/deployments", COSTLY_ROUTE_THROTTLE),
    Route("GET", "/runs"),
    Route("GET", "/runs/{runId}"),
    Route("GET", "/runs/{runId}/logs"),
    Route("POST", "/aws-account/onboarding", COSTLY_ROUTE_THROTTLE),
    Route("PUT", "/aws-account", COSTLY_ROUTE_THROTTLE),
    Route("GET", "/aws-account"),
    Route("DELETE", "/aws-account"),
    Route("GET", "/audit"),
    # Tier 3: organisations (the role each needs: lambda_src/agent_builder/access.py).
    Route("POST", "/org"),
    Route("GET", "/org"),
    Route("PATCH", "/org"),
    Route("GET", "/org/members"),
    Route("PUT", "/org/members/{userId}"),
    Route("DELETE", "/org/members/{userId}"),
    Route("POST", "/org/invitations"),
    Route("GET", "/org/invitations"),
    Route("DELETE", "/org/invitations/{invitationId}"),
    Route("POST", "/org/invitations/{invitationId}/accept"),
    Route("GET", "/org/audit"),
    Route("PUT", "/org/sso", COSTLY_ROUTE_THROTTLE),
    Route("DELETE", "/org/sso"),
    Route("POST", "/org/sso/device-authorization", COSTLY_ROUTE_THROTTLE),
    Route("GET", "/org/sso/session"),
    Route("DELETE", "/org/sso/session"),
    Route("POST", "/org/accounts/onboarding"),
    Route("GET", "/org/accounts"),
    Route("DELETE", "/org/accounts/{accountId}"),
)
# The order CORS lists methods in (preflight answers are the same in any order).
_CORS_METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
CORS_EXPOSED_HEADERS = ("Retry-After",)

ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","method":"$context.httpMethod",'
    '"routeKey":"$context.routeKey","status":"$context.status",'
    '"protocol":"$context.protocol","responseLength":"$context.responseLength",'
    '"latencyMs":"$context.responseLatency","userId":"$context.authorizer.claims.sub",'
    '"authorizerError":"$context.authorizer.error","integrationError":"$context.integrationErrorMessage"}'
)


def log_and_throttle_stage(
    scope: Construct,
    log_group_id: str,
    http_api: apigw.HttpApi,
    *,
    log_group_name: str,
    log_retention: logs.RetentionDays,
    default: Throttle,
    routes: Mapping[str, Throttle],
    detailed_metrics: bool = False,
) -> logs.LogGroup:
    """The default stage writes JSON access logs (ACCESS_LOG_FORMAT) to a new log group
    `log_group_name` (construct `log_group_id` in `scope`, deleted with the stack) and
    throttles the whole API at `default`, and each route key in `routes` at its own."""
    access_logs = logs.LogGroup(
        scope,
        log_group_id,
        log_group_name=log_group_name,
        retention=log_retention,
        removal_policy=RemovalPolicy.DESTROY,
    )
    checkov_skip(access_logs, CKV_AWS_158=LOG_GROUP_KMS_REASON)
    stage = http_api.default_stage.node.default_child  # type: ignore[union-attr]
    assert isinstance(stage, apigw.CfnStage)
    stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
        destination_arn=access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
    )
    stage.default_route_settings = apigw.CfnStage.RouteSettingsProperty(
        throttling_rate_limit=default.rate_limit,
        throttling_burst_limit=default.burst_limit,
        detailed_metrics_enabled=detailed_metrics or None,
    )
    stage.route_settings = {
        key: {
            "ThrottlingRateLimit": throttle.rate_limit,
            "ThrottlingBurstLimit": throttle.burst_limit,
        }
        for key, throttle in routes.items()
    }
    return access_logs


class ControlPlaneApi(Construct):
    """An HTTP API whose every route needs a Cognito access token with `required_scope`
    and goes to the function `handlers` names for its Route.function.

    The default stage writes JSON access logs and throttles the whole API, with a tighter
    limit on the routes ROUTES marks.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        handlers: Mapping[str, lambda_.IFunction],
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        required_scope: str,
        allowed_origins: Sequence[str],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        methods = {route.method for route in ROUTES}
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=f"{prefix}-api",
            description="agent-builder control-plane API",
            default_authorizer=authorizers.HttpUserPoolAuthorizer(
                "CognitoJwt", user_pool, user_pool_clients=[user_pool_client]
            ),
            create_default_stage=True,
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=list(allowed_origins),
                allow_methods=[apigw.CorsHttpMethod(m) for m in _CORS_METHOD_ORDER if m in methods],
                allow_headers=list(CORS_HEADERS),
                # The console reads when to retry a 429 or a 503.
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=Duration.hours(1),
            ),
        )
        missing = {route.function for route in ROUTES} - set(handlers)
        if missing:
            raise ValueError(f"no function for the {sorted(missing)} routes")
        # The core integration keeps the id it had when one function served every route.
        integration_ids = {CORE: "Api", ORGANIZATIONS: "OrgApi"}
        integration = {
            name: integrations.HttpLambdaIntegration(integration_ids[name], function)
            for name, function in handlers.items()
        }
        for route in ROUTES:
            self.http_api.add_routes(
                path=route.path,
                methods=[apigw.HttpMethod(route.method)],
                integration=integration[route.function],
                # Only access tokens carry it: an ID token is refused (401) on every route.
                authorization_scopes=[required_scope],
            )

        self.access_logs = log_and_throttle_stage(
            self,
            "ApiAccessLogs",
            self.http_api,
            log_group_name=f"/{prefix}/api-access",
            log_retention=log_retention,
            default=STAGE_THROTTLE,
            routes={route.key: route.throttle for route in ROUTES if route.throttle is not None},
            detailed_metrics=True,
        )

    @property
    def url(self) -> str:
        return self.http_api.api_endpoint


__all__ = [
    "CORE",
    "COSTLY_ROUTE_THROTTLE",
    "ORGANIZATIONS",
    "ROUTES",
    "STAGE_THROTTLE",
    "ControlPlaneApi",
    "Route",
    "Throttle",
    "log_and_throttle_stage",
]
