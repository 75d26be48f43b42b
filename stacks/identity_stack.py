"""Stack 2, identity: the Cognito user pool the HTTP API's JWT authorizer trusts, its
identity providers (Google; GitHub through our OIDC bridge), the sign-up triggers, and the
reconcile that keeps the organisations' runtime SAML IdPs on the web client across deploys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import ArnFormat, CfnOutput, Stack
from aws_cdk import aws_cognito as cognito

from constructs import Construct
from constructs.control_plane_functions import POST_CONFIRMATION, PRE_SIGN_UP, function_name
from constructs.idp_reconcile import IdpReconcile
from constructs.oidc_bridge import SCOPES, OidcBridge
from constructs.user_pool import (
    AgentBuilderUserPool,
    IdentityProviderFactory,
    SignUpTriggers,
    google_identity_provider,
    idp_response_url,
)
from stacks.config import PlatformConfig

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"


class IdentityStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        console_origins: Sequence[str],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        providers = identity_providers(config)
        self.github_bridge: OidcBridge | None = None
        if config.github_client_id and config.github_client_secret_name:
            self.github_bridge = self._github_bridge(config)
            providers.append(self._github_provider)
        self.users = AgentBuilderUserPool(
            self,
            "Users",
            prefix=config.prefix,
            # The web console (stacks/web_console_stack.py) signs in and out at its root.
            callback_urls=[f"{origin}/" for origin in console_origins],
            logout_urls=[f"{origin}/" for origin in console_origins],
            identity_providers=providers,
            triggers=self._sign_up_triggers(config.prefix),
            removal_policy=config.removal_policy,
        )
        self.idp_reconcile = self._idp_reconcile(config)
        CfnOutput(self, "UserPoolId", value=self.users.user_pool.user_pool_id)
        CfnOutput(self, "WebClientId", value=self.users.client.user_pool_client_id)
        CfnOutput(self, "HostedUiDomain", value=self.users.domain.base_url())

    def _sign_up_triggers(self, prefix: str) -> SignUpTriggers:
        """The control plane's trigger functions, by ARN: they live there, beside the
        profiles table they write, and that stack already depends on this one (its
        authorizer trusts this pool), so a reference back would be a cycle. Cognito invokes
        whatever the ARN names; the control plane grants it (lambda Permission, source ARN
        = this pool)."""

        def arn(construct_id: str) -> str:
            return self.format_arn(
                service="lambda",
                resource="function",
                resource_name=function_name(prefix, construct_id),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        return SignUpTriggers(
            pre_sign_up=arn(PRE_SIGN_UP), post_confirmation=arn(POST_CONFIRMATION)
        )

    def _idp_reconcile(self, config: PlatformConfig) -> IdpReconcile:
        """Every deploy that updates the web client drops the organisations' `org-*` SAML
        IdPs the API added at runtime; this puts them back. Always present, not only with
        enterpriseSso: that flag adds the KMS key of IAM Identity Center sessions, while
        any organisation's admin can create a SAML IdP (PUT /org/sso) regardless.

        Here, beside the client it follows, it refers only to this stack's pool and client:
        no reference to the control plane, which already depends on this stack."""
        from stacks.control_plane_stack import powertools_version

        return IdpReconcile(
            self,
            "OrgIdpReconcile",
            prefix=config.prefix,
            user_pool=self.users.user_pool,
            client=self.users.client,
            code_directory=str(LAMBDA_SRC),
            powertools_version=powertools_version(),
            log_retention=config.log_retention,
        )

    # ---- GitHub, through the OIDC bridge (docs/deploy.md "GitHub sign-in") ---------------

    def _github_bridge(self, config: PlatformConfig) -> OidcBridge:
        from stacks.control_plane_stack import powertools_version

        bridge = OidcBridge(
            self,
            "GitHubBridge",
            prefix=config.prefix,
            code_directory=str(LAMBDA_SRC),
            powertools_version=powertools_version(),
            cognito_redirect_uri=idp_response_url(config.prefix),
            github_client_id=str(config.github_client_id),
            github_client_secret_name=str(config.github_client_secret_name),
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        # The callback URL to enter in the GitHub OAuth app.
        CfnOutput(self, "GitHubCallbackUrl", value=bridge.endpoint("/callback"))
        return bridge

    def _github_provider(
        self, _scope: Construct, pool: cognito.IUserPool
    ) -> cognito.IUserPoolIdentityProvider:
        # In the stack's scope (not the pool's), where its logical id was pinned.
        bridge = self.github_bridge
        assert bridge is not None
        provider = cognito.UserPoolIdentityProviderOidc(
            self,
            "GitHub",
            user_pool=pool,
            name="GitHub",
            client_id=bridge.client_id,
            # A dynamic reference ({{resolve:secretsmanager:...}}): CloudFormation reads the
            # value at deploy time; the template never holds it.
            client_secret=bridge.client_secret.secret_value.unsafe_unwrap(),
            issuer_url=bridge.issuer,
            # Given rather than discovered, so creating the provider does not depend on the
            # bridge answering while this very stack deploys it.
            endpoints=cognito.OidcEndpoints(
                authorization=bridge.endpoint("/authorize"),
                token=bridge.endpoint("/token"),
                user_info=bridge.endpoint("/userinfo"),
                jwks_uri=bridge.endpoint("/jwks.json"),
            ),
            scopes=list(SCOPES),
            attribute_request_method=cognito.OidcAttributeRequestMethod.GET,
            attribute_mapping=cognito.AttributeMapping(
                email=cognito.ProviderAttribute.other("email"),
                email_verified=cognito.ProviderAttribute.other("email_verified"),
                fullname=cognito.ProviderAttribute.other("name"),
                profile_picture=cognito.ProviderAttribute.other("picture"),
            ),
        )
        for route in bridge.routes:
            provider.node.add_dependency(route)
        return provider


def identity_providers(config: PlatformConfig) -> list[IdentityProviderFactory]:
    """The configured providers; one whose keys are unset is left out."""
    providers: list[IdentityProviderFactory] = []
    if config.google_client_id and config.google_client_secret_name:
        providers.append(
            google_identity_provider(
                client_id=config.google_client_id, secret_name=config.google_client_secret_name
            )
        )
    return providers
