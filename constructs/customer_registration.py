"""Tier 2: the topic customers' onboarding stacks register through, and the launcher role."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from constructs import Construct, IConstruct
from constructs.nag import acknowledge, checkov_skip, nag_text


def registration_topic_arn(scope: IConstruct, prefix: str) -> str:
    """The topic's ARN as the onboarding template spells it (it is named, not generated)."""
    return Stack.of(scope).format_arn(
        service="sns", resource=f"{prefix}-registrations", arn_format=ArnFormat.NO_RESOURCE_NAME
    )


def launcher_role_arn(scope: IConstruct, prefix: str) -> str:
    """The launcher role's ARN: the one principal customers' deployer roles trust."""
    return Stack.of(scope).format_arn(
        service="iam", region="", resource="role", resource_name=f"{prefix}-launcher"
    )


class CustomerRegistration(Construct):
    """What connects customers' accounts: their stacks publish here, the launcher works there.

    CloudFormation in a customer's account publishes their onboarding stack's
    custom-resource events to the topic, which feeds `subscriber`. The launcher role's
    only power is to assume customers' `<prefix>-deployer` roles (each admits it only with
    the customer's External ID); `launcher_users` may assume the launcher, nothing else can.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        subscriber: lambda_.IFunction,
        launcher_users: Sequence[iam.IRole],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Registrations",
            topic_name=f"{prefix}-registrations",
            display_name=f"{prefix} customer account registrations",
            enforce_ssl=True,
        )
        # Customers publish with their own credentials and are not known in advance.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CustomerStacksRegister",
                principals=[iam.AnyPrincipal()],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
        )
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "Registration messages carry a role ARN, account id and External ID, none of which "
            "grants anything alone (the role trusts only our launcher role); SSE with a KMS key "
            "would also need a key policy open to every customer account.",
        )
        checkov_skip(
            self.topic,
            CKV_AWS_26="Same reason as AwsSolutions-SNS2: customer accounts publish with their own "
            "credentials, which an encrypted topic would need a key policy open to all for.",
        )
        self.topic.add_subscription(subscriptions.LambdaSubscription(subscriber))

        self.launcher_role = iam.Role(
            self,
            "Launcher",
            role_name=f"{prefix}-launcher",
            description="Assumes customers' <prefix>-deployer roles, with their External ID",
            assumed_by=iam.CompositePrincipal(
                *(iam.ArnPrincipal(role.role_arn) for role in launcher_users)
            ),
            max_session_duration=Duration.hours(1),
        )
        deployer_roles = Stack.of(self).format_arn(
            service="iam",
            region="",
            account="*",
            resource="role",
            resource_name=f"{prefix}-deployer",
        )
        self.launcher_role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeCustomerDeployerRoles",
                actions=["sts:AssumeRole", "sts:SetSourceIdentity"],
                resources=[deployer_roles],
            )
        )
        acknowledge(
            self.launcher_role,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, deployer_roles)}]",
            "Customers' account ids are not known in advance: the launcher may assume only roles "
            "named <prefix>-deployer, in any account, and each such role admits it only with the "
            "customer's External ID.",
        )
        for role in launcher_users:
            self.grant_assume_launcher(role)

    def grant_assume_launcher(self, role: iam.IRole) -> None:
        """Assume the launcher; the launcher's trust policy must name `role` as well."""
        # No source identity on this hop: it is set on the customer hop, once, to the
        # platform user (AWS forbids changing it along a chain).
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self.launcher_role.role_arn])
        )


__all__ = ["CustomerRegistration", "launcher_role_arn", "registration_topic_arn"]
