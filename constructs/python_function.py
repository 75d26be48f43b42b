"""A Lambda function from lambda_src/ the way every function here is built."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.nag import LOG_GROUP_KMS_REASON, acknowledge, checkov_skip

RUNTIME = lambda_.Runtime.PYTHON_3_14  # the newest Python runtime aws-cdk-lib offers


class PythonFunction(Construct):
    """ARM64, newest Python runtime, Powertools layer, X-Ray, its own log group and role.

    The role is written here rather than taken from CDK's default, whose
    AWSLambdaBasicExecutionRole managed policy may write to every log group in the
    account; this one writes only to the function's own log group. Callers add the
    rest with `grant_*` on the resources the function touches.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        description: str,
        handler: str,
        code: lambda_.Code,
        powertools: lambda_.ILayerVersion,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        timeout_seconds: int = 15,
        memory_size: int = 512,
        asynchronous: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        checkov_skip(self.log_group, CKV_AWS_158=LOG_GROUP_KMS_REASON)
        self.role = iam.Role(
            self,
            "Role",
            description=f"{function_name}: its log group, traces, and what the stack grants",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        self.log_group.grant_write(self.role)
        # Asynchronous invocations (EventBridge) that fail after Lambda's retries land
        # here instead of vanishing; synchronous ones (the API) report to their caller.
        self.dead_letters: sqs.Queue | None = None
        if asynchronous:
            self.dead_letters = sqs.Queue(
                self,
                "DeadLetters",
                encryption=sqs.QueueEncryption.KMS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            acknowledge(
                self.dead_letters,
                "AwsSolutions-SQS3",
                "This queue is itself the dead-letter queue of the function's asynchronous "
                "invocations; a dead-letter queue of a dead-letter queue would only hide it.",
            )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            layers=[powertools],
            role=self.role,
            environment=dict(environment),
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            dead_letter_queue=self.dead_letters,
            retry_attempts=2 if asynchronous else None,
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level "
            'permissions, so AWS requires Resource "*" for active tracing; they only write traces.',
        )
        checkov_skip(
            self.function,
            CKV_AWS_115="Concurrency is bounded upstream (API throttling per route and per-user "
            "rate limits; one-minute schedules); reserving concurrency would fail deployment "
            "in new accounts whose regional limit is 10.",
            CKV_AWS_117="The function calls only AWS public APIs; inside the VPC it would need a "
            "NAT gateway or interface endpoints, which bill while idle.",
            CKV_AWS_173="Environment variables hold only resource names and limits, no secrets.",
            **(
                {}
                if asynchronous
                else {
                    "CKV_AWS_116": "Invoked synchronously by API Gateway, which returns the error "
                    "to the caller; a dead-letter queue only applies to asynchronous invocations."
                }
            ),
        )
