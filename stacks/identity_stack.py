"""Stack 2, identity: the Cognito user pool the HTTP API's JWT authorizer trusts."""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Stack

from constructs import Construct
from constructs.control_plane_functions import POST_CONFIRMATION, PRE_SIGN_UP, function_name
from constructs.user_pool import (
    AgentBuilderUserPool,
    IdentityProviderFactory,
    SignUpTriggers,
    google_identity_provider,
)
from stacks.config import PlatformConfig


class IdentityStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        origin = config.production_domain
        self.users = AgentBuilderUserPool(
            self,
            "Users",
            prefix=config.prefix,
            callback_urls=[f"{origin}/auth/callback"],
            logout_urls=[f"{origin}/"],
            identity_providers=identity_providers(config),
            triggers=self._sign_up_triggers(config.prefix),
            removal_policy=config.removal_policy,
        )
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
