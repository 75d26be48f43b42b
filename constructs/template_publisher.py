"""Publishes the customer onboarding template where CloudFormation quick-create can read it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy

from constructs import Construct
from constructs.bucket_upload import tidy_upload_function
from constructs.nag import acknowledge, checkov_skip

TEMPLATE_KEY_PREFIX = "customer-onboarding/"

PUBLIC_READ_REASON = (
    "Public read is the point of this bucket: CloudFormation's Launch Stack (quick-create) "
    "link fetches TemplateURL from the customer's account, where our bucket cannot name a "
    "principal in advance. The policy allows anonymous s3:GetObject only on "
    "customer-onboarding/*, which holds nothing but the published onboarding templates (no "
    "secrets, the same text we hand out); listing, writing and every other key stay private."
)


class TemplatePublisher(Construct):
    """A dedicated bucket serving `customer-onboarding/<version>.yaml`, and nothing else.

    Older versions stay (no pruning): a Launch Stack link handed out earlier keeps working.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        template_body: str,
        version: str,
        organization_template_body: str | None = None,
        access_logs_bucket: s3.IBucket,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        log_retention_days: int = 30,
    ) -> None:
        super().__init__(scope, construct_id)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # Anonymous GETs cannot use SSE-KMS (they have no kms:Decrypt): SSE-S3.
            encryption=s3.BucketEncryption.S3_MANAGED,
            # ACLs stay blocked and ignored; only the bucket policy below may be public.
            block_public_access=s3.BlockPublicAccess(
                block_public_acls=True,
                ignore_public_acls=True,
                block_public_policy=False,
                restrict_public_buckets=False,
            ),
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix="customer-templates/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tidy-versions-and-uploads",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="QuickCreateReadsPublishedTemplates",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{TEMPLATE_KEY_PREFIX}*")],
            )
        )
        acknowledge(self.bucket, "AwsSolutions-S2", PUBLIC_READ_REASON)
        checkov_skip(
            self.bucket,
            CKV_AWS_54="block_public_policy is off so that the policy granting anonymous "
            "s3:GetObject on customer-onboarding/* can exist; ACLs stay blocked. "
            + PUBLIC_READ_REASON,
            CKV_AWS_56="restrict_public_buckets is off so that anonymous reads of "
            "customer-onboarding/* work; the policy grants nothing else. " + PUBLIC_READ_REASON,
            CKV_AWS_145="Anonymous readers cannot decrypt SSE-KMS objects; the public templates "
            "are encrypted at rest with SSE-S3.",
            CKV_AWS_144="The templates are rebuilt from source by every deploy; cross-region "
            "replication would add cost for nothing to recover.",
        )
        key = f"{TEMPLATE_KEY_PREFIX}{version}.yaml"
        # Tier 3: the organisation template (a StackSet of the customer template), which an
        # enterprise admin launches in their management account.
        organization_key = f"{TEMPLATE_KEY_PREFIX}organization-{version}.yaml"
        sources = [s3deploy.Source.data(key, template_body)]
        if organization_template_body is not None:
            sources.append(s3deploy.Source.data(organization_key, organization_template_body))
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Upload",
            destination_bucket=self.bucket,
            sources=sources,
            content_type="application/x-yaml",
            # Keep earlier versions: links to them may still be in customers' hands.
            prune=False,
            retain_on_delete=not destroy,
        )
        self._tidy_upload_function(removal_policy, log_retention_days)
        self.template_key = key
        self.template_url = self.bucket.virtual_hosted_url_for_object(key, regional=True)
        self.organization_template_url = self.bucket.virtual_hosted_url_for_object(
            organization_key, regional=True
        )

    def _tidy_upload_function(self, removal_policy: RemovalPolicy, log_retention_days: int) -> None:
        tidy_upload_function(
            self,
            bucket=self.bucket,
            removal_policy=removal_policy,
            log_retention_days=log_retention_days,
            what="the template",
        )


__all__ = ["TEMPLATE_KEY_PREFIX", "TemplatePublisher"]
