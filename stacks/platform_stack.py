"""Stack 1, the platform: network, the agent cluster, storage and cost monitoring."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from constructs import Construct
from constructs.agent_cluster import AgentCluster
from constructs.agent_network import AgentNetwork
from constructs.budget_kill_switch import BudgetKillSwitchTopic
from constructs.nag import acknowledge, checkov_skip
from constructs.template_publisher import TemplatePublisher
from stacks.config import PlatformConfig
from stacks.onboarding_templates import render_customer_template, render_organization_template


class PlatformStack(Stack):
    """VPC, ECS cluster, ECR repository, artifacts bucket, alarm topic and budget."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        prefix = config.prefix
        stateful_removal = config.removal_policy

        self.network = AgentNetwork(
            self,
            "Network",
            prefix=prefix,
            flow_log_retention=config.log_retention,
        )
        self.agents = AgentCluster(
            self,
            "Agents",
            prefix=prefix,
            vpc=self.network.vpc,
            allowed_models=config.allowed_models,
            log_retention=config.log_retention,
        )

        self.repository = ecr.Repository(
            self,
            "AgentImages",
            repository_name=f"{prefix}/agent-runner",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            # The AWS-managed key: KMS encryption at rest with no key to pay for or manage.
            encryption=ecr.RepositoryEncryption.KMS,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Drop untagged layers a day after they lose their tag",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(1),
                    rule_priority=1,
                ),
                ecr.LifecycleRule(
                    description="Keep the 20 most recent runner images",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=20,
                    rule_priority=2,
                ),
            ],
            removal_policy=stateful_removal,
            empty_on_delete=not config.retain_data,
        )
        self.repository.grant_pull(self.agents.execution_role)
        # Tier 2/3 tasks in customers' accounts run the same runner image. It holds no
        # secrets; pulls are limited to task execution roles with our prefixed name, which
        # the onboarding template creates (and grants itself the matching pull).
        self.repository.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CustomerTaskExecutionRolesPull",
                principals=[iam.AnyPrincipal()],
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                conditions={
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{self.partition}:iam::*:role/{prefix}-task-execution"
                    }
                },
            )
        )
        acknowledge(
            self.repository,
            "AwsSolutions-ECR1",
            "Customer accounts are not known in advance, so the pull grant names no account: "
            "only roles called <prefix>-task-execution may pull, read-only, and the runner "
            "image holds no secrets (its code is this repository's agent_runner/).",
        )
        checkov_skip(
            self.repository,
            CKV_AWS_32="Same reason as AwsSolutions-ECR1: read-only pulls of a secret-free image, "
            "limited to roles named <prefix>-task-execution in customers' accounts.",
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # S3 server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(90),
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=stateful_removal,
            auto_delete_objects=not config.retain_data,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This bucket is the server-access-log target of the artifacts bucket; logging "
            "its own access would write a log object per log object, forever.",
        )
        checkov_skip(
            self.access_logs,
            CKV_AWS_18="Access-log target bucket: logging it to itself would loop.",
            CKV_AWS_145="S3 server access logging cannot deliver to an SSE-KMS bucket; SSE-S3 is used.",
            CKV_AWS_144="Access logs are operational data kept 90 days; cross-region replication would double cost for no recovery need.",
        )

        self.artifacts = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.KMS_MANAGED,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-run-artifacts",
                    prefix="runs/",
                    expiration=Duration.days(config.run_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="tidy-versions-and-uploads",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            removal_policy=stateful_removal,
            auto_delete_objects=not config.retain_data,
        )
        checkov_skip(
            self.artifacts,
            CKV_AWS_144="Run artifacts are re-creatable test outputs that expire with their runs; "
            "cross-region replication would double storage cost for no recovery need.",
        )
        # The runner reads its request and writes its result under runs/<runId>/ and
        # nowhere else. One task role serves every run, so the run id is a wildcard.
        # (grant_read/grant_put would add List*, GetBucket* and Abort*: more than it needs.)
        self.agents.task_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRunRequest",
                actions=["s3:GetObject"],
                resources=[self.artifacts.arn_for_objects("runs/*/request.json")],
            )
        )
        self.agents.task_role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRunResult",
                actions=["s3:PutObject"],
                resources=[self.artifacts.arn_for_objects("runs/*/result.json")],
            )
        )
        bucket_id = self.resolve(self.get_logical_id(self.artifacts.node.default_child))  # type: ignore[arg-type]
        acknowledge(
            self.agents.task_role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/runs/*/request.json]",
            "One task role serves every run, so the run id in the key is a wildcard; the "
            "role reads only request.json objects under runs/ and only our runner image "
            "(no user code) runs on the platform cluster.",
        )
        acknowledge(
            self.agents.task_role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/runs/*/result.json]",
            "One task role serves every run, so the run id in the key is a wildcard; the "
            "role writes only result.json objects under runs/.",
        )

        self.alarm_topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{prefix}-alarms",
            display_name=f"{prefix} platform alarms",
            enforce_ssl=True,
        )
        acknowledge(
            self.alarm_topic,
            "AwsSolutions-SNS2",
            "Alarm and budget notifications carry only metric names and thresholds. CloudWatch "
            "and AWS Budgets cannot publish to a topic encrypted with the AWS-managed SNS key, "
            "and a customer-managed key would bill every month for no confidentiality gain.",
        )
        checkov_skip(
            self.alarm_topic,
            CKV_AWS_26="Same reason as AwsSolutions-SNS2: alarm payloads are not sensitive, and "
            "CloudWatch/Budgets cannot publish to a topic under the AWS-managed key.",
        )
        if config.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsPublish",
                principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.alarm_action = cw_actions.SnsAction(self.alarm_topic)

        # Container Insights' cluster-level task count: every task here is a test run.
        running_tasks = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="TaskCount",
            dimensions_map={"ClusterName": self.agents.cluster.cluster_name},
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        too_many_tasks = running_tasks.create_alarm(
            self,
            "TooManyTestTasks",
            alarm_name=f"{prefix}-too-many-test-tasks",
            alarm_description=(
                f"More than {config.max_concurrent_test_tasks} test tasks are running on "
                f"{prefix}-cluster: someone may be beating the quota, or tasks are not stopping."
            ),
            threshold=config.max_concurrent_test_tasks,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        too_many_tasks.add_alarm_action(self.alarm_action)

        subscribers = [
            budgets.CfnBudget.SubscriberProperty(
                subscription_type="SNS", address=self.alarm_topic.topic_arn
            )
        ]
        if config.alarm_email:
            subscribers.append(
                budgets.CfnBudget.SubscriberProperty(
                    subscription_type="EMAIL", address=config.alarm_email
                )
            )
        # The kill switch: the ACTUAL alert at 100 % goes to a topic of its own, whose
        # subscriber pauses the free tier (handlers.budget, in the control plane).
        self.kill_switch = BudgetKillSwitchTopic(
            self, "BudgetKillSwitch", prefix=prefix, budget_name=f"{prefix}-monthly"
        )
        alerts = [
            (notification_type, threshold, subscribers)
            for notification_type, threshold in (("ACTUAL", 80), ("FORECASTED", 100))
        ]
        # A notification has at most one SNS subscriber: this one's is the kill switch.
        alerts.append(
            (
                "ACTUAL",
                100,
                [
                    budgets.CfnBudget.SubscriberProperty(
                        subscription_type="SNS", address=self.kill_switch.topic.topic_arn
                    ),
                    *subscribers[1:],
                ],
            )
        )
        budget = budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.kill_switch.budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(
                    amount=config.monthly_budget_usd, unit="USD"
                ),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=notification_type,
                        comparison_operator="GREATER_THAN",
                        threshold=threshold,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=alert_subscribers,
                )
                for notification_type, threshold, alert_subscribers in alerts
            ],
        )
        budget.node.add_dependency(self.alarm_topic, self.kill_switch)

        # Tier 2: the customer onboarding template, where Launch Stack (quick-create) links
        # point. It is rendered in its own app: this account never deploys it.
        self.customer_template = TemplatePublisher(
            self,
            "CustomerTemplate",
            template_body=render_customer_template(config),
            version=config.template_version,
            organization_template_body=render_organization_template(config),
            access_logs_bucket=self.access_logs,
            removal_policy=stateful_removal,
            log_retention_days=config.log_retention_days,
        )
        CfnOutput(
            self,
            "CustomerTemplateUrl",
            value=self.customer_template.template_url,
            description="The customer onboarding template (TemplateURL of Launch Stack links)",
        )
