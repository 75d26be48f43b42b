"""Builds the whole app: shared by app.py, the tests and the benchmark."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from constructs.nag import CdkProviderCheckovSkips
from stacks.config import ConfigError, PlatformConfig
from stacks.control_plane_stack import ControlPlaneStack
from stacks.identity_stack import IdentityStack
from stacks.platform_stack import PlatformStack
from stacks.web_console_stack import WebContentStack, WebHostingStack


class Platform:
    """The stacks of one app, for callers that wire or inspect them."""

    def __init__(self, app: cdk.App, config: PlatformConfig) -> None:
        self.config = config
        prefix = config.prefix
        # Stack tags: CloudFormation copies them onto every resource it can tag, including
        # the ones CDK adds for its own custom resources.
        self.stack_tags = {"Project": prefix}
        self.platform = PlatformStack(
            app,
            "Platform",
            stack_name=f"{prefix}-platform",
            description=f"{prefix}: network, agent cluster, storage, alarms and budget",
            tags=self.stack_tags,
            config=config,
        )
        # Before Identity and ControlPlane: the sign-in callback and the API's CORS origin
        # are the console's origin (stacks/web_console_stack.py).
        self.web_hosting = WebHostingStack(
            app,
            "WebHosting",
            stack_name=f"{prefix}-web-hosting",
            description=f"{prefix}: the web console's bucket and CloudFront distribution",
            tags=self.stack_tags,
            config=config,
        )
        self.identity = IdentityStack(
            app,
            "Identity",
            stack_name=f"{prefix}-identity",
            description=f"{prefix}: Cognito user pool, hosted sign-in and the web client",
            tags=self.stack_tags,
            config=config,
            console_origins=self.web_hosting.origins,
        )
        self.control_plane = ControlPlaneStack(
            app,
            "ControlPlane",
            stack_name=f"{prefix}-control-plane",
            description=f"{prefix}: HTTP API, tables, functions, test time limit and alarms",
            tags=self.stack_tags,
            config=config,
            platform=self.platform,
            identity=self.identity,
            console_origins=self.web_hosting.origins,
        )
        self.web_content = WebContentStack(
            app,
            "WebContent",
            stack_name=f"{prefix}-web-content",
            description=f"{prefix}: the web console's files and config.json",
            tags=self.stack_tags,
            config=config,
            hosting=self.web_hosting,
            api_url=self.control_plane.api.url,
            user_pool_client_id=self.identity.users.client.user_pool_client_id,
            sign_in_domain=self.identity.users.domain.base_url(),
            api_scope=self.identity.users.api_scope_name,
        )


def load_config(app: cdk.App) -> PlatformConfig:
    try:
        return PlatformConfig.from_context(app.node.try_get_context)
    except ConfigError as exc:
        # Synth stops here with the key and the allowed values, not a stack trace.
        raise SystemExit(f"Invalid configuration: {exc}") from None


def build_app(app: cdk.App, *, nag: bool = True) -> Platform:
    config = load_config(app)
    platform = Platform(app, config)
    cdk.Tags.of(app).add("Project", config.prefix)
    cdk.Aspects.of(app).add(CdkProviderCheckovSkips())
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return platform
