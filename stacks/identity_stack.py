"""Stack 2, identity: the Cognito user pool the HTTP API's JWT authorizer trusts."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack

from constructs import Construct
from constructs.user_pool import AgentBuilderUserPool
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
            removal_policy=config.removal_policy,
        )
        CfnOutput(self, "UserPoolId", value=self.users.user_pool.user_pool_id)
        CfnOutput(self, "WebClientId", value=self.users.client.user_pool_client_id)
        CfnOutput(self, "HostedUiDomain", value=self.users.domain.base_url())
