"""Who may call the API: a Cognito user pool, its hosted sign-in domain and the web client."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito

from constructs import Construct
from constructs.nag import acknowledge

# Builds an identity provider of the given pool (providers need the pool; the pool's
# client needs the providers' names).
IdentityProviderFactory = Callable[[cognito.UserPool], cognito.IUserPoolIdentityProvider]


def hosted_domain_prefix(prefix: str) -> str:
    """The hosted sign-in domain's prefix (the account id keeps it globally unique)."""
    return f"{prefix}-{Aws.ACCOUNT_ID}"


def idp_response_url(prefix: str) -> str:
    """Where an external identity provider sends the browser back to Cognito."""
    return f"https://{hosted_domain_prefix(prefix)}.auth.{Aws.REGION}.amazoncognito.com/oauth2/idpresponse"


class AgentBuilderUserPool(Construct):
    """Email sign-in with a strong password policy, and an authorization-code + PKCE client.

    Identity providers (Google, GitHub through an OIDC bridge, enterprise SAML) are
    passed in as factories of this pool's providers; the client lists them as supported,
    so adding one is a constructor argument, not a change here.
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
        providers = [build(self.user_pool) for build in identity_providers]

        self.domain = self.user_pool.add_domain(
            "HostedUi",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=hosted_domain_prefix(prefix)),
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
        for provider in providers:  # Cognito refuses a client naming a provider not yet made
            self.client.node.add_dependency(provider)
