"""The control plane's HTTP API: its routes, their throttles, auth and access logs.

One route table (ROUTES) is the whole surface: the routes, the CORS methods and the
per-route throttles are all derived from it. tests/infra checks it against
dist/openapi.json.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    throttle: Throttle | None = None  # None: the stage's

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
)
# The order CORS lists methods in (preflight answers are the same in any order).
_CORS_METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")

ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","method":"$context.httpMethod",'
    '"routeKey":"$context.routeKey","status":"$context.status",'
    '"protocol":"$context.protocol","responseLength":"$context.responseLength",'
    '"latencyMs":"$context.responseLatency","userId":"$context.authorizer.claims.sub",'
    '"authorizerError":"$context.authorizer.error","integrationError":"$context.integrationErrorMessage"}'
)


class ControlPlaneApi(Construct):
    """An HTTP API whose every route needs a Cognito access token with `required_scope`
    and goes to one function.

    The default stage writes JSON access logs and throttles the whole API, with a tighter
    limit on the routes ROUTES marks.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        handler: lambda_.IFunction,
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        required_scope: str,
        allowed_origin: str,
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
                allow_origins=[allowed_origin],
                allow_methods=[apigw.CorsHttpMethod(m) for m in _CORS_METHOD_ORDER if m in methods],
                allow_headers=list(CORS_HEADERS),
                max_age=Duration.hours(1),
            ),
        )
        integration = integrations.HttpLambdaIntegration("Api", handler)
        for route in ROUTES:
            self.http_api.add_routes(
                path=route.path,
                methods=[apigw.HttpMethod(route.method)],
                integration=integration,
                # Only access tokens carry it: an ID token is refused (401) on every route.
                authorization_scopes=[required_scope],
            )

        self.access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            log_group_name=f"/{prefix}/api-access",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        checkov_skip(self.access_logs, CKV_AWS_158=LOG_GROUP_KMS_REASON)
        stage = self.http_api.default_stage.node.default_child  # type: ignore[union-attr]
        assert isinstance(stage, apigw.CfnStage)
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=ACCESS_LOG_FORMAT
        )
        stage.default_route_settings = apigw.CfnStage.RouteSettingsProperty(
            throttling_rate_limit=STAGE_THROTTLE.rate_limit,
            throttling_burst_limit=STAGE_THROTTLE.burst_limit,
            detailed_metrics_enabled=True,
        )
        stage.route_settings = {
            route.key: {
                "ThrottlingRateLimit": route.throttle.rate_limit,
                "ThrottlingBurstLimit": route.throttle.burst_limit,
            }
            for route in ROUTES
            if route.throttle is not None
        }

    @property
    def url(self) -> str:
        return self.http_api.api_endpoint


__all__ = [
    "COSTLY_ROUTE_THROTTLE",
    "ROUTES",
    "STAGE_THROTTLE",
    "ControlPlaneApi",
    "Route",
    "Throttle",
]
