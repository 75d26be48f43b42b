"""Stack 2, identity: the Cognito user pool the HTTP API's JWT authorizer trusts."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, Stack

from constructs import Construct
from constructs.user_pool import AgentBuilderUserPool
from stacks.config import PlatformConfig


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
        self.users = AgentBuilderUserPool(
            self,
            "Users",
            prefix=config.prefix,
            # The web console (stacks/web_console_stack.py) signs in and out at its root.
            callback_urls=[f"{origin}/" for origin in console_origins],
            logout_urls=[f"{origin}/" for origin in console_origins],
            removal_policy=config.removal_policy,
        )
        CfnOutput(self, "UserPoolId", value=self.users.user_pool.user_pool_id)
        CfnOutput(self, "WebClientId", value=self.users.client.user_pool_client_id)
        CfnOutput(self, "HostedUiDomain", value=self.users.domain.base_url())
