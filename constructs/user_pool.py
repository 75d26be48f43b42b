"""Who may call the API: a Cognito user pool, its hosted sign-in domain and the web client."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_cognito as cognito

from constructs import Construct
from constructs.nag import acknowledge

# An identity provider made for the pool once it exists: (scope, pool) -> the provider.
IdentityProviderFactory = Callable[
    [Construct, cognito.IUserPool], cognito.IUserPoolIdentityProvider
]
# The API's one scope: access tokens carry `<identifier>/<API_SCOPE>`, ID tokens no scope.
API_SCOPE = "api"


def api_resource_server_identifier(prefix: str) -> str:
    """The resource server's identifier; `<identifier>/api` is the scope the API requires."""
    return f"{prefix}-api"


def google_identity_provider(*, client_id: str, secret_name: str) -> IdentityProviderFactory:
    """Google sign-in; the client secret is a dynamic reference to the Secrets Manager
    secret `secret_name` (a plain-string secret), resolved by CloudFormation at deploy."""

    def build(scope: Construct, pool: cognito.IUserPool) -> cognito.IUserPoolIdentityProvider:
        return cognito.UserPoolIdentityProviderGoogle(
            scope,
            "Google",
            user_pool=pool,
            client_id=client_id,
            client_secret_value=SecretValue.secrets_manager(secret_name),
            scopes=["openid", "email", "profile"],
            attribute_mapping=cognito.AttributeMapping(
                email=cognito.ProviderAttribute.GOOGLE_EMAIL,
                email_verified=cognito.ProviderAttribute.GOOGLE_EMAIL_VERIFIED,
                fullname=cognito.ProviderAttribute.GOOGLE_NAME,
                profile_picture=cognito.ProviderAttribute.GOOGLE_PICTURE,
            ),
        )

    return build


@dataclass(frozen=True)
class SignUpTriggers:
    """The ARNs of the pre sign-up and post confirmation functions (built in another stack,
    so given as ARNs: Cognito stores them and invokes them when a user signs up)."""

    pre_sign_up: str
    post_confirmation: str


class AgentBuilderUserPool(Construct):
    """Email sign-in with a strong password policy, and an authorization-code + PKCE client.

    Identity providers (Google, GitHub through an OIDC bridge) are passed in as factories
    the construct calls with the pool; the client lists them as supported and waits for
    them, so adding one is a constructor argument, not a change here. Enterprise SAML IdPs
    are added at runtime. The client asks for the API's scope (a resource server), so its
    access tokens open the API and its ID tokens do not.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        callback_urls: Sequence[str],
        logout_urls: Sequence[str],
        identity_providers: Sequence[IdentityProviderFactory] = (),
        triggers: SignUpTriggers | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{prefix}-users",
            # Lite: no paid extras. Threat protection needs the Plus plan (see below).
            feature_plan=cognito.FeaturePlan.LITE,
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP) rather than required: most users sign in through Google, "
            "GitHub or their company's SSO, whose own MFA applies; requiring a second Cognito "
            "factor for the e-mail fallback would block freemium sign-up.",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG3",
            "Threat protection (advanced security) needs the paid Plus feature plan; the "
            "platform runs on the Lite plan by design and limits abuse with per-user quotas, "
            "rate limits and API throttling instead.",
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Plus feature plan bills per monthly active user for threat protection; the "
            "platform deliberately runs on Lite (see COG3) and caps abuse with quotas instead.",
        )
        if triggers is not None:
            pool = self.user_pool.node.default_child
            assert isinstance(pool, cognito.CfnUserPool)
            pool.lambda_config = cognito.CfnUserPool.LambdaConfigProperty(
                pre_sign_up=triggers.pre_sign_up, post_confirmation=triggers.post_confirmation
            )
        providers = [build(self, self.user_pool) for build in identity_providers]
        self.identity_providers = providers

        self.api_scope = cognito.ResourceServerScope(
            scope_name=API_SCOPE, scope_description="Call the agent-builder HTTP API"
        )
        self.resource_server = self.user_pool.add_resource_server(
            "Api",
            identifier=api_resource_server_identifier(prefix),
            user_pool_resource_server_name=f"{prefix}-api",
            scopes=[self.api_scope],
        )
        self.api_scope_name = f"{api_resource_server_identifier(prefix)}/{API_SCOPE}"

        self.domain = self.user_pool.add_domain(
            "HostedUi",
            # The account id keeps the globally unique prefix unique per deployment.
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=f"{prefix}-{Aws.ACCOUNT_ID}"),
        )
        supported = [cognito.UserPoolClientIdentityProvider.COGNITO]
        supported += [
            cognito.UserPoolClientIdentityProvider.custom(p.provider_name) for p in providers
        ]
        self.client = self.user_pool.add_client(
            "WebClient",
            user_pool_client_name=f"{prefix}-web",
            generate_secret=False,  # a browser app cannot keep a secret: PKCE protects the code
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.PROFILE,
                    cognito.OAuthScope.resource_server(self.resource_server, self.api_scope),
                ],
                callback_urls=list(callback_urls),
                logout_urls=list(logout_urls),
            ),
            supported_identity_providers=supported,
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        for provider in providers:
            # The client names each provider: CloudFormation must create them first.
            self.client.node.add_dependency(provider)
