"""The web console's hosting: a private bucket behind CloudFront, and its files.

Two constructs because two stacks hold them (stacks/web_console_stack.py): the hosting
(bucket, distribution, security headers) comes before the user pool, whose callback URL
is the distribution's origin; the content (web/ and a config.json naming the API, the
hosted sign-in domain and the client) comes after the API, which it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy

from constructs import Construct
from constructs.bucket_upload import tidy_upload_function
from constructs.nag import acknowledge, checkov_skip

# Directives shared with local mode's server (local_mode/console.py, where connect-src is
# the one origin that serves both the console and the API).
CSP_DIRECTIVES: tuple[str, ...] = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def content_security_policy(connect_sources: Sequence[str]) -> str:
    """The console's CSP: its own files only; fetch only to itself and `connect_sources`."""
    directives = list(CSP_DIRECTIVES)
    directives.insert(4, "connect-src " + " ".join(["'self'", *connect_sources]))
    return "; ".join(directives)


class WebConsoleHosting(Construct):
    """A private bucket that only the distribution reads (origin access control), behind
    an HTTPS distribution with a strict CSP and the usual security headers."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        connect_sources: Sequence[str],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-replaced-files",
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The bucket holds only the console's static files, written by CloudFormation "
            "deploys and read only by the distribution through origin access control; what "
            "users do is recorded by the API's access logs and the audit trail.",
        )
        checkov_skip(
            self.bucket,
            CKV_AWS_18="Static console files read only through CloudFront (see AwsSolutions-S1).",
            CKV_AWS_145="SSE-S3: CloudFront's origin access control reads SSE-S3 objects without "
            "a key policy; the files are the public console's code, not data.",
            CKV_AWS_144="The files are rebuilt from web/ by every deploy; replication would add "
            "cost for nothing to recover.",
        )

        self.csp = content_security_policy(connect_sources)
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="agent-builder console: strict CSP and security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self.csp, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730),
                    include_subdomains=True,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy",
                        value="camera=(), microphone=(), geolocation=(), payment=()",
                        override=True,
                    )
                ]
            ),
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)

        def behaviour(cache_policy: cloudfront.ICachePolicy) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                # HTTP is answered with a redirect to HTTPS (and HSTS above): content is
                # only ever sent over HTTPS.
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cache_policy,
                response_headers_policy=self.headers,
                compress=True,
            )

        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="agent-builder web console",
            default_root_object="index.html",
            default_behavior=behaviour(cloudfront.CachePolicy.CACHING_OPTIMIZED),
            # Written by each deploy: never served stale from the edge.
            additional_behaviors={
                "/config.json": behaviour(cloudfront.CachePolicy.CACHING_DISABLED)
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "The console is for users anywhere; the API it calls enforces who may do what.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "AWS WAF bills a web ACL and rules every month while idle; the distribution serves "
            "only static files (GET/HEAD), and the API behind the console has its own "
            "throttles, quotas and rate limits.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "Static files only: standard logging needs an ACL-enabled log bucket (the "
            "platform's log bucket enforces bucket-owner ACLs off); user actions are logged "
            "by the API's access logs and audit trail.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "With no custom domain the distribution uses CloudFront's default *.cloudfront.net "
            "certificate, for which CloudFront fixes the TLS policy; viewers negotiate TLS 1.2+ "
            "in practice and HSTS keeps them on HTTPS.",
        )
        checkov_skip(
            self.distribution,
            CKV_AWS_68="WAF: see AwsSolutions-CFR2 (static files, idle cost).",
            CKV_AWS_86="Access logging: see AwsSolutions-CFR3.",
            CKV_AWS_174="The default *.cloudfront.net certificate: CloudFront fixes its TLS "
            "policy (see AwsSolutions-CFR4).",
            CKV_AWS_310="A single S3 origin of static files: an origin group would fail over "
            "to a copy of the same files.",
            CKV_AWS_374="The console is for users anywhere (see AwsSolutions-CFR1).",
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"


class WebConsoleContent(Construct):
    """The files of web/ and config.json, deployed into the hosting bucket; the edge cache
    invalidated so a deploy shows at once."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        directory: str,
        bucket: s3.IBucket,
        distribution: cloudfront.IDistribution,
        config: Mapping[str, Any],
        removal_policy: RemovalPolicy,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            destination_bucket=bucket,
            sources=[
                s3deploy.Source.asset(directory),
                s3deploy.Source.json_data("config.json", dict(config)),
            ],
            # No hashed file names: browsers revalidate (ETag) and the edge is invalidated.
            cache_control=[s3deploy.CacheControl.from_string("no-cache")],
            prune=True,
            distribution=distribution,
            distribution_paths=["/*"],
            retain_on_delete=removal_policy == RemovalPolicy.RETAIN,
        )
        uploader = tidy_upload_function(
            self,
            bucket=bucket,
            removal_policy=removal_policy,
            log_retention_days=log_retention_days,
            what="the console's files",
        )
        acknowledge(
            uploader,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudFront's CreateInvalidation and GetInvalidation, which CDK's BucketDeployment "
            "grants so a deploy shows at once; the upload function runs only during deploys.",
        )


def cognito_domain_url(prefix: str) -> str:
    """The hosted sign-in domain's URL, as constructs/user_pool.py names its prefix."""
    return f"https://{prefix}-{Aws.ACCOUNT_ID}.auth.{Aws.REGION}.amazoncognito.com"


__all__ = [
    "CSP_DIRECTIVES",
    "WebConsoleContent",
    "WebConsoleHosting",
    "cognito_domain_url",
    "content_security_policy",
]
