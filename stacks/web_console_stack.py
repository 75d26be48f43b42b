"""Stack 5, the web console: hosting (before Identity) and content (after ControlPlane).

Split in two to break the cycle the console would otherwise close: the user pool's
callback URL and the API's CORS origin need the distribution's domain, and the
console's config.json needs the user pool client and the API's URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Fn, Stack
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.web_console import WebConsoleContent, WebConsoleHosting, cognito_domain_url
from stacks.config import PlatformConfig

WEB = Path(__file__).resolve().parents[1] / "web"
# What the hosted sign-in page is asked for (the web client's OAuth scopes), besides the
# API's own scope (access tokens only open the API).
SIGN_IN_SCOPES = ("openid", "email", "profile")


class WebHostingStack(Stack):
    """The console's private bucket and its CloudFront distribution."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.hosting = WebConsoleHosting(
            self,
            "Console",
            # The API's id is not known yet (the API's CORS needs this distribution), so the
            # CSP allows API Gateway endpoints of this region only; the sign-in domain exactly.
            connect_sources=[
                f"https://*.execute-api.{Aws.REGION}.amazonaws.com",
                cognito_domain_url(config.prefix),
            ],
            removal_policy=config.removal_policy,
        )
        # The origins the console is served from: the distribution's, and the owner's
        # own domain when productionDomain is set.
        self.origins = [self.hosting.origin]
        if config.production_domain:
            self.origins.append(config.production_domain)
        CfnOutput(self, "ConsoleUrl", value=f"{config.production_domain or self.hosting.origin}/")


class WebContentStack(Stack):
    """web/ and the config.json that tells it where the API and the sign-in page are."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        hosting: WebHostingStack,
        api_url: str,
        user_pool_client_id: str,
        sign_in_domain: str,
        api_scope: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        console = hosting.hosting
        # A named export (rather than CDK's hashed one) so the upload function's grant on
        # the bucket can be acknowledged by its exact resource.
        export_name = f"{config.prefix}-web-console-bucket-arn"
        hosting.export_value(console.bucket.bucket_arn, name=export_name)
        bucket = s3.Bucket.from_bucket_arn(self, "ConsoleFiles", Fn.import_value(export_name))
        WebConsoleContent(
            self,
            "Content",
            directory=str(WEB),
            bucket=bucket,
            distribution=console.distribution,
            config={
                "mode": "cognito",
                "apiUrl": api_url,
                "region": Aws.REGION,
                "cognito": {
                    "domain": sign_in_domain,
                    "clientId": user_pool_client_id,
                    "scopes": [*SIGN_IN_SCOPES, api_scope],
                },
                "allowedModels": list(config.allowed_models),
                "maxOutputTokens": config.max_output_tokens,
                "freeTestsPerMonth": config.free_tests_per_month,
            },
            removal_policy=config.removal_policy,
            log_retention_days=config.log_retention_days,
        )
