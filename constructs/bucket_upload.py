"""What every BucketDeployment in a stack shares: its upload function, tidied once.

CDK's BucketDeployment puts one singleton upload function at stack level, outside the
construct that asked for it. Its findings are CDK's own grants, acknowledged here with
their reasons; its log group follows the platform's retention and removal policy.
"""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3

from constructs import Construct, IConstruct
from constructs.nag import LOG_GROUP_KMS_REASON, acknowledge, checkov_skip, nag_text


def tidy_upload_function(
    scope: Construct,
    *,
    bucket: s3.IBucket,
    removal_policy: RemovalPolicy,
    log_retention_days: int,
    what: str,
) -> IConstruct:
    """Acknowledge and tidy the upload function that writes `what` into `bucket`; return it."""
    stack = Stack.of(scope)
    (uploader,) = [
        c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment")
    ]
    acknowledge(
        uploader,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's BucketDeployment upload function uses AWSLambdaBasicExecutionRole for its own "
        "logs only; CloudFormation invokes it during deployments, nothing else can.",
    )
    acknowledge(
        uploader,
        "AwsSolutions-L1",
        "The runtime of CDK's BucketDeployment upload function is chosen and bundled by "
        "aws-cdk-lib (with the AWS CLI layer it needs); upgrading aws-cdk-lib moves it.",
    )
    for finding, reason in (
        (
            "Action::s3:GetBucket*",
            f"BucketDeployment's grant to read its source asset and write {what} "
            "(CDK's grant_read / grant_read_write); the bucket is this construct's own.",
        ),
        (
            "Action::s3:GetObject*",
            f"BucketDeployment reads {what} from CDK's asset bucket (grant_read).",
        ),
        (
            "Action::s3:List*",
            "BucketDeployment lists the destination prefix to compare and upload.",
        ),
        (
            "Action::s3:Abort*",
            f"BucketDeployment's grant_read_write on the bucket of {what} includes aborting "
            "its own multipart uploads.",
        ),
        (
            "Action::s3:DeleteObject*",
            f"BucketDeployment's grant_read_write on the bucket of {what}: it deletes what a "
            "deploy no longer ships (prune) or, on stack deletion, a destroyable bucket's objects.",
        ),
        (
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            "CDK's bootstrap asset bucket, whose object keys are content hashes: the upload "
            f"function reads {what} from it.",
        ),
        (
            f"Resource::{nag_text(scope, bucket.bucket_arn)}/*",
            f"The upload function writes the objects of {what}'s own bucket.",
        ),
    ):
        acknowledge(uploader, f"AwsSolutions-IAM5[{finding}]", reason)
    for child in uploader.node.find_all():
        if isinstance(child, CfnResource) and child.cfn_resource_type == "AWS::Logs::LogGroup":
            checkov_skip(child, CKV_AWS_158=LOG_GROUP_KMS_REASON)
            # CDK keeps this log group for two years and past `cdk destroy`; ours follows
            # the platform's retention and removal policy like every other log group.
            child.apply_removal_policy(removal_policy)
            child.add_property_override("RetentionInDays", log_retention_days)
        if isinstance(child, CfnResource) and child.cfn_resource_type == "AWS::IAM::Policy":
            checkov_skip(
                child,
                CKV_AWS_111=f"CDK's BucketDeployment writes {what} into this construct's own "
                "bucket; its grants are CDK's. It runs only during deploys.",
            )
    return uploader


__all__ = ["tidy_upload_function"]
