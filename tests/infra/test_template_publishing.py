"""Publishing the customer template: readable by quick-create, and nothing else public."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.onboarding_templates import render_customer_template, render_organization_template
from tests.infra.conftest import ROOT, Synthesized

# Pinned: the template bucket is stateful (its objects are what Launch Stack links point at).
BUCKET = "CustomerTemplateBucketA3C2A870"


@pytest.fixture(scope="module")
def template(default_app: Synthesized) -> Template:
    return default_app.template(default_app.platform.platform)


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, Any]:
    return dict(template.to_json()["Resources"])


def bucket_policy_statements(resources: dict[str, Any], bucket: str) -> list[dict[str, Any]]:
    (policy,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def is_public(statement: dict[str, Any]) -> bool:
    return statement.get("Principal") in ("*", {"AWS": "*"})


def test_only_published_templates_are_publicly_readable(resources: dict[str, Any]) -> None:
    assert resources[BUCKET]["Type"] == "AWS::S3::Bucket"
    public_allows = [
        s
        for s in bucket_policy_statements(resources, BUCKET)
        if is_public(s) and s["Effect"] == "Allow"
    ]
    assert public_allows == [
        {
            "Sid": "QuickCreateReadsPublishedTemplates",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": {
                "Fn::Join": ["", [{"Fn::GetAtt": [BUCKET, "Arn"]}, "/customer-onboarding/*"]]
            },
        }
    ]


def test_no_other_bucket_in_the_platform_allows_anyone(resources: dict[str, Any]) -> None:
    for key, resource in resources.items():
        if resource["Type"] != "AWS::S3::BucketPolicy":
            continue
        bucket = resource["Properties"]["Bucket"]["Ref"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if is_public(statement) and statement["Effect"] == "Allow":
                assert bucket == BUCKET, key


def test_template_bucket_is_tls_only_and_blocks_acls(resources: dict[str, Any]) -> None:
    denies = [
        s
        for s in bucket_policy_statements(resources, BUCKET)
        if s["Effect"] == "Deny" and s["Action"] == "s3:*"
    ]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    properties = resources[BUCKET]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]


def test_template_bucket_logs_access_to_the_access_log_bucket(resources: dict[str, Any]) -> None:
    logging = resources[BUCKET]["Properties"]["LoggingConfiguration"]
    target = logging["DestinationBucketName"]["Ref"]
    assert resources[target]["Type"] == "AWS::S3::Bucket"
    assert target.startswith("AccessLogs")
    assert logging["LogFilePrefix"] == "customer-templates/"


def test_the_rendered_template_is_uploaded_at_its_versioned_key(
    default_app: Synthesized, resources: dict[str, Any]
) -> None:
    (upload,) = [r for r in resources.values() if r["Type"] == "Custom::CDKBucketDeployment"]
    properties = upload["Properties"]
    assert properties["DestinationBucketName"] == {"Ref": BUCKET}
    assert "DestinationBucketKeyPrefix" not in properties
    # Earlier versions stay, so Launch Stack links already handed out keep working.
    assert properties["Prune"] is False
    # CDK stages each source as a folder and zips it when publishing.
    staged = [
        default_app.outdir / f"asset.{key.removesuffix('.zip')}"
        for key in properties["SourceObjectKeys"]
    ]
    files = {
        p.relative_to(folder).as_posix(): p
        for folder in staged
        for p in folder.rglob("*")
        if p.is_file()
    }
    config = default_app.platform.config
    version = config.template_version
    # The customer template, and (Tier 3) the organisation template beside it.
    assert set(files) == {
        f"customer-onboarding/{version}.yaml",
        f"customer-onboarding/organization-{version}.yaml",
    }
    published = files[f"customer-onboarding/{version}.yaml"].read_text()
    assert published == render_customer_template(config)
    organization = files[f"customer-onboarding/organization-{version}.yaml"].read_text()
    assert organization == render_organization_template(config)


def test_template_url_is_a_stack_output(template: Template, default_app: Synthesized) -> None:
    version = default_app.platform.config.template_version
    output = template.to_json()["Outputs"]["CustomerTemplateUrl"]
    assert output["Value"] == {
        "Fn::Join": [
            "",
            [
                "https://",
                {"Fn::GetAtt": [BUCKET, "RegionalDomainName"]},
                f"/customer-onboarding/{version}.yaml",
            ],
        ]
    }


def test_publishing_leaves_nothing_behind_by_default(resources: dict[str, Any]) -> None:
    for key, resource in resources.items():
        if key.startswith(("CustomerTemplate", "CustomCDKBucketDeployment")):
            assert resource.get("DeletionPolicy", "Delete") == "Delete", key
    assert resources[BUCKET]["Properties"]["Tags"][0] == {
        "Key": "aws-cdk:auto-delete-objects",
        "Value": "true",
    }


def test_retain_data_keeps_the_template_bucket(synth: Any) -> None:
    app: Synthesized = synth(retainData=True)
    resources = app.template(app.platform.platform).to_json()["Resources"]
    assert resources[BUCKET]["DeletionPolicy"] == "Retain"
    (upload,) = [r for r in resources.values() if r["Type"] == "Custom::CDKBucketDeployment"]
    assert upload["Properties"]["RetainOnDelete"] is True


def test_under_the_cdk_cli_the_published_template_is_still_the_committed_one() -> None:
    # `cdk synth` hands every app in the process its context (path metadata on); the
    # template the platform publishes must not pick it up.
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    cli_context = context | {"aws:cdk:enable-path-metadata": True}
    script = (
        "import hashlib, json\n"
        "from stacks.config import PlatformConfig\n"
        "from stacks.onboarding_templates import handed_out, render_customer_template\n"
        f"config = handed_out(PlatformConfig.from_context({context!r}.get))\n"
        "print(hashlib.sha256(render_customer_template(config).encode()).hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=os.environ | {"CDK_CONTEXT_JSON": json.dumps(cli_context)},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    committed = (ROOT / "dist" / "customer-onboarding.yaml").read_bytes()
    assert result.stdout.split()[-1] == hashlib.sha256(committed).hexdigest()


def test_published_versions_are_never_expired_or_pruned(resources: dict[str, Any]) -> None:
    # Launch Stack links and stacks' update links name a version's URL: it must stay.
    (upload,) = [r for r in resources.values() if r["Type"] == "Custom::CDKBucketDeployment"]
    assert upload["Properties"]["Prune"] is False
    rules = resources[BUCKET]["Properties"]["LifecycleConfiguration"]["Rules"]
    for rule in rules:
        # Only superseded object versions and abandoned uploads expire, never a current key.
        assert not {"ExpirationInDays", "ExpirationDate", "ExpiredObjectDeleteMarker"} & set(
            rule
        ), rule
    assert resources[BUCKET]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
