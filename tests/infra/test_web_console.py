"""The web console's hosting: private bucket, CloudFront with OAC and a strict CSP, the
files and config.json deployed after the API, callbacks and CORS on the console's origin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from constructs.web_console import CSP_DIRECTIVES, content_security_policy
from local_mode.console import CONTENT_SECURITY_POLICY as LOCAL_CSP
from tests.infra.conftest import Synthesized


@pytest.fixture(scope="module")
def hosting(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.web_hosting)


@pytest.fixture(scope="module")
def content(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.web_content)


def only(template: Template, kind: str) -> dict[str, Any]:
    (resource,) = template.find_resources(kind).values()
    return dict(resource)


def test_the_bucket_is_private_encrypted_and_tls_only(hosting: Template) -> None:
    hosting.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": Match.any_value(),
        },
    )
    policy = json.dumps(only(hosting, "AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policy


def test_only_the_distribution_reads_the_bucket_through_origin_access_control(
    hosting: Template,
) -> None:
    hosting.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    statements = only(hosting, "AWS::S3::BucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    reads = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert len(reads) == 1
    assert reads[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert "AWS:SourceArn" in json.dumps(reads[0]["Condition"])
    config = only(hosting, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


def test_viewers_get_https_and_the_security_headers(hosting: Template) -> None:
    config = only(hosting, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert {b["ViewerProtocolPolicy"] for b in behaviours} == {"redirect-to-https"}
    assert all(b["Compress"] for b in behaviours)
    assert config["DefaultRootObject"] == "index.html"
    headers = only(hosting, "AWS::CloudFront::ResponseHeadersPolicy")["Properties"][
        "ResponseHeadersPolicyConfig"
    ]["SecurityHeadersConfig"]
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"


def test_the_csp_allows_its_own_origin_the_regions_api_and_the_sign_in_domain(
    default_app: Synthesized, hosting: Template
) -> None:
    policy = only(hosting, "AWS::CloudFront::ResponseHeadersPolicy")["Properties"][
        "ResponseHeadersPolicyConfig"
    ]["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    text = joined(policy)
    for directive in CSP_DIRECTIVES:
        assert directive in text
    assert "unsafe-inline" not in text and "unsafe-eval" not in text and "data:" not in text
    assert "connect-src 'self' https://*.execute-api.${AWS::Region}.amazonaws.com " in text
    # Exactly the hosted sign-in domain, as the user pool's domain names it.
    identity = default_app.template(default_app.platform.identity)
    domain = joined(only(identity, "AWS::Cognito::UserPoolDomain")["Properties"]["Domain"])
    assert f" https://{domain}.auth.${{AWS::Region}}.amazoncognito.com;" in text


def joined(value: Any) -> str:
    """A string or Fn::Join of strings and Refs, with each Ref spelled ${name}."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(joined(part) for part in parts)


def test_local_mode_serves_the_same_policy_with_the_api_on_its_own_origin() -> None:
    assert content_security_policy([]) == LOCAL_CSP


def test_files_and_config_json_are_deployed_after_the_api_and_the_client(
    content: Template,
) -> None:
    deployment = only(content, "Custom::CDKBucketDeployment")["Properties"]
    assert deployment["Prune"] is True
    assert deployment["DistributionPaths"] == ["/*"]
    markers = json.dumps(deployment["SourceMarkers"])
    assert "control-plane:ExportsOutputFnGetAttHttpApi" in markers  # apiUrl
    assert "identity:ExportsOutputRefUsersUserPoolWebClient" in markers  # clientId
    assert "identity:ExportsOutputRefUsersUserPoolHostedUi" in markers  # sign-in domain
    assert "web-console-bucket-arn" in json.dumps(deployment["DestinationBucketName"])


def test_the_stack_order_breaks_the_cycle(default_app: Synthesized) -> None:
    platform = default_app.platform
    assert platform.web_hosting in platform.identity.dependencies
    assert platform.web_hosting in platform.control_plane.dependencies
    assert platform.control_plane in platform.web_content.dependencies
    assert platform.identity in platform.web_content.dependencies


def test_the_api_allows_only_the_consoles_origin(default_app: Synthesized) -> None:
    api = only(default_app.template(default_app.platform.control_plane), "AWS::ApiGatewayV2::Api")
    cors = api["Properties"]["CorsConfiguration"]
    (origin,) = cors["AllowOrigins"]
    assert "web-hosting:ExportsOutputFnGetAttConsoleDistribution" in json.dumps(origin)
    assert cors["ExposeHeaders"] == ["Retry-After"]


def test_destroy_empties_the_bucket_unless_data_is_retained(hosting: Template, synth: Any) -> None:
    hosting.resource_count_is("Custom::S3AutoDeleteObjects", 1)
    assert only(hosting, "AWS::S3::Bucket")["DeletionPolicy"] == "Delete"
    kept: Synthesized = synth(retainData=True)
    retained = kept.template(kept.platform.web_hosting)
    retained.resource_count_is("Custom::S3AutoDeleteObjects", 0)
    assert only(retained, "AWS::S3::Bucket")["DeletionPolicy"] == "Retain"
