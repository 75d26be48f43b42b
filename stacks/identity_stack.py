"""Stack 2, identity: the Cognito user pool the HTTP API's JWT authorizer trusts."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cognito as cognito

from constructs import Construct
from constructs.oidc_bridge import SCOPES, OidcBridge
from constructs.user_pool import AgentBuilderUserPool, IdentityProviderFactory, idp_response_url
from stacks.config import PlatformConfig

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"


class IdentityStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        origin = config.production_domain
        providers: list[IdentityProviderFactory] = []
        self.github_bridge: OidcBridge | None = None
        if config.github_client_id and config.github_client_secret_name:
            self.github_bridge = self._github_bridge(config)
            providers.append(self._github_provider)
        self.users = AgentBuilderUserPool(
            self,
            "Users",
            prefix=config.prefix,
            callback_urls=[f"{origin}/auth/callback"],
            logout_urls=[f"{origin}/"],
            identity_providers=providers,
            removal_policy=config.removal_policy,
        )
        CfnOutput(self, "UserPoolId", value=self.users.user_pool.user_pool_id)
        CfnOutput(self, "WebClientId", value=self.users.client.user_pool_client_id)
        CfnOutput(self, "HostedUiDomain", value=self.users.domain.base_url())

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

    def _github_provider(self, pool: cognito.UserPool) -> cognito.IUserPoolIdentityProvider:
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
