"""Tier 2: the topic customers' onboarding stacks register through, and the launcher role."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

from constructs import Construct, IConstruct
from constructs.nag import acknowledge, checkov_skip, nag_text

# The registration function's concurrency through its queue: the public topic cannot make
# it scale out (2 is the smallest maximum concurrency an SQS event source accepts).
MAX_CONCURRENCY = 2
MAX_RECEIVE_COUNT = 3
SQS_SSE_REASON = (
    "Encrypted with SQS-managed SSE: SNS cannot send to a queue encrypted with the AWS "
    "managed aws/sqs KMS key (its key policy cannot admit sns.amazonaws.com), and the "
    "messages hold no secret a customer-managed key would protect (the token is single-use "
    "and only its hash is kept)."
)
REGISTRATION_VISIBILITY_SECONDS = 90


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
    custom-resource events to the topic. Anyone may publish there, so the topic does not
    invoke `subscriber` directly: it feeds an encrypted queue (SNS's JSON envelope, raw
    delivery off), which feeds `subscriber` at most MAX_CONCURRENCY at a time; a message
    that keeps failing goes to a dead-letter queue whose alarm notifies `alarm_action`.
    The launcher role's
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
        alarm_action: cloudwatch.IAlarmAction,
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
            "grants anything alone (the role trusts only our launcher role), and a single-use "
            "registration token that the platform keeps only as a hash and that is spent by the "
            "registration it came with; SSE with a KMS key would also need a key policy open to "
            "every customer account.",
        )
        checkov_skip(
            self.topic,
            CKV_AWS_26="Same reason as AwsSolutions-SNS2: customer accounts publish with their own "
            "credentials, which an encrypted topic would need a key policy open to all for.",
        )
        self.dead_letters = sqs.Queue(
            self,
            "RegistrationDeadLetters",
            queue_name=f"{prefix}-registrations-dead-letters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the registration queue's dead-letter queue; its alarm "
            "notifies the operator.",
        )
        checkov_skip(
            self.dead_letters,
            CKV_AWS_27=SQS_SSE_REASON,
        )
        self.queue = sqs.Queue(
            self,
            "RegistrationQueue",
            queue_name=f"{prefix}-registrations",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # At least the function's timeout (Lambda requires it); CloudFormation waits
            # ServiceTimeout (300 s) for an answer, so a retry must come soon.
            visibility_timeout=Duration.seconds(REGISTRATION_VISIBILITY_SECONDS),
            retention_period=Duration.days(1),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letters
            ),
        )
        checkov_skip(self.queue, CKV_AWS_27=SQS_SSE_REASON)
        # The queue policy CDK writes admits sns.amazonaws.com for this topic only
        # (aws:SourceArn); raw delivery off: the function reads SNS's envelope.
        self.topic.add_subscription(
            subscriptions.SqsSubscription(self.queue, raw_message_delivery=False)
        )
        subscriber.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=1,
                max_concurrency=MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "RegistrationDeadLettersAlarm",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            alarm_description="A customer registration message failed "
            f"{MAX_RECEIVE_COUNT} times and is in the dead-letter queue",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(alarm_action)

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


__all__ = [
    "MAX_CONCURRENCY",
    "CustomerRegistration",
    "launcher_role_arn",
    "registration_topic_arn",
]
