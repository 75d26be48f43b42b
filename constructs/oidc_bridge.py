"""GitHub sign-in through an OIDC bridge of ours (lambda_src/agent_builder/oidc_bridge).

Its own small HTTP API (public: OAuth endpoints authenticate their callers themselves),
one function, a KMS RSA key that signs the ID tokens (the function may only Sign with it
and read its public key), a table of one-time states, codes and access tokens, the
generated secret Cognito authenticates with, and a reference by name to the GitHub OAuth
app's secret the owner created (never its value).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager

from constructs import Construct
from constructs.control_plane_api import Throttle, log_and_throttle_stage
from constructs.control_plane_functions import ControlPlaneFunctions
from constructs.nag import acknowledge, checkov_skip

# The bridge serves one Cognito user pool: a handful of sign-ins a second is plenty, and
# the routes that call GitHub or write a grant get less.
BRIDGE_THROTTLE = Throttle(rate_limit=20, burst_limit=40)
ROUTES: dict[str, Throttle | None] = {
    "GET /.well-known/openid-configuration": None,
    "GET /jwks.json": None,
    "GET /authorize": Throttle(rate_limit=10, burst_limit=20),
    "GET /callback": Throttle(rate_limit=10, burst_limit=20),
    "POST /token": Throttle(rate_limit=10, burst_limit=20),
    "GET /userinfo": None,
}
HANDLER = "handlers.oidc_bridge.handler"
SCOPES = ("openid", "email", "profile")


class OidcBridge(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        code_directory: str,
        powertools_version: str,
        cognito_redirect_uri: str,
        github_client_id: str,
        github_client_secret_name: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.client_id = f"{prefix}-cognito"
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=f"{prefix}-github-oidc-bridge",
            description="agent-builder: the OIDC bridge Cognito uses for GitHub sign-in",
            create_default_stage=True,
        )
        self.issuer = self.http_api.api_endpoint

        self.grants = dynamodb.Table(
            self,
            "Grants",
            partition_key=dynamodb.Attribute(name="grantId", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiresAt",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Minutes-long, single-use records: nothing to keep on destroy, whatever retainData.
            removal_policy=RemovalPolicy.DESTROY,
        )
        checkov_skip(
            self.grants,
            CKV_AWS_119="Encrypted with the AWS-managed DynamoDB key. Items hold only SHA-256 "
            "hashes as keys and expire within minutes; a customer key would bill monthly.",
        )
        self.client_secret = secretsmanager.Secret(
            self,
            "CognitoClientSecret",
            description=f"{prefix}: the secret Cognito's GitHub identity provider uses at the bridge",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.client_secret,
            "AwsSolutions-SMG4",
            "Rotating it needs the Cognito identity provider updated in the same step (it holds "
            "the value through a dynamic reference resolved at deploy time): rotate by replacing "
            "the secret and redeploying, which docs/deploy.md describes.",
        )
        checkov_skip(
            self.client_secret,
            CKV_AWS_149="Encrypted with the AWS-managed Secrets Manager key; only the bridge's role "
            "and CloudFormation (the identity provider's dynamic reference) read it.",
        )
        github_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "GitHubOAuthSecret", github_client_secret_name
        )

        functions = ControlPlaneFunctions(
            self,
            "Functions",
            prefix=prefix,
            code_directory=code_directory,
            powertools_version=powertools_version,
            log_retention=log_retention,
        )
        self.function = functions.add(
            "GitHubOidcBridge",
            handler=HANDLER,
            description="GitHub sign-in for Cognito: OIDC discovery, authorize, token, userinfo",
            environment={},  # set below, once the key exists
            timeout_seconds=20,  # three GitHub calls of at most 4 s each, and KMS
        )
        role = self.function.role
        self.signing_key = kms.Key(
            self,
            "SigningKey",
            description=f"{prefix}: signs the GitHub OIDC bridge's ID tokens (RS256)",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=removal_policy,
            pending_window=Duration.days(7),
        )
        # Only the bridge's role may sign: an account principal with kms:* from IAM still
        # cannot mint ID tokens Cognito would trust.
        self.signing_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheBridgeSigns",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign"],
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": role.role_arn}},
            )
        )
        self.signing_key.grant(role, "kms:Sign", "kms:GetPublicKey")
        acknowledge(
            self.signing_key,
            "AwsSolutions-KMS5",
            "An asymmetric RSA signing key: KMS supports automatic rotation only for symmetric "
            "keys. Rotate by adding a key and publishing both in the JWKS.",
        )
        self.grants.grant(role, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        self.client_secret.grant_read(role)
        github_secret.grant_read(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:"
            f"<AWS::AccountId>:secret:{github_client_secret_name}-??????]",
            "The owner's GitHub OAuth secret is known by name; Secrets Manager appends six random "
            "characters to its ARN, which `-??????` matches and nothing else.",
        )
        environment = {
            "POWERTOOLS_SERVICE_NAME": f"{prefix}-github-oidc-bridge",
            "BRIDGE_TABLE": self.grants.table_name,
            "BRIDGE_SIGNING_KEY_ARN": self.signing_key.key_arn,
            "BRIDGE_ISSUER": self.issuer,
            "BRIDGE_CLIENT_ID": self.client_id,
            "BRIDGE_CLIENT_SECRET_ARN": self.client_secret.secret_arn,
            "BRIDGE_REDIRECT_URI": cognito_redirect_uri,
            "GITHUB_CLIENT_ID": github_client_id,
            "GITHUB_CLIENT_SECRET_NAME": github_client_secret_name,
            "GITHUB_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
        }
        for name, value in environment.items():
            self.function.function.add_environment(name, value)

        integration = integrations.HttpLambdaIntegration("Bridge", self.function.function)
        self.routes: list[apigw.HttpRoute] = []
        for key in ROUTES:
            method, path = key.split(" ", 1)
            self.routes += self.http_api.add_routes(
                path=path, methods=[apigw.HttpMethod(method)], integration=integration
            )
        for route in self.routes:
            # Route settings name routes: the stage is updated once they exist.
            self.http_api.default_stage.node.add_dependency(route)  # type: ignore[union-attr]
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "OAuth/OIDC endpoints are public by protocol: /token authenticates Cognito with "
                "its client secret, /userinfo checks the bridge's own access token, /callback "
                "needs a one-time state; discovery and JWKS are public documents.",
            )
        # The control plane's log format; its authorizer fields stay empty here.
        self.access_logs = log_and_throttle_stage(
            self,
            "AccessLogs",
            self.http_api,
            log_group_name=f"/{prefix}/github-oidc-bridge-access",
            log_retention=log_retention,
            default=BRIDGE_THROTTLE,
            routes={key: throttle for key, throttle in ROUTES.items() if throttle is not None},
        )

    def endpoint(self, path: str) -> str:
        return f"{self.issuer}{path}"
