"""The topic AWS Budgets notifies when the month's actual cost passes the budget.

Its only publisher is AWS Budgets, for this account's budget: the topic policy allows
`budgets.amazonaws.com` with `aws:SourceAccount` and `aws:SourceArn` (the budget's ARN).
Its subscriber is the kill-switch function (the control plane's `handlers.budget`),
which pauses the free tier. Not encrypted: Budgets cannot publish to a topic under the
AWS-managed SNS key, and the payload is the budget's name and amounts.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from constructs import Construct
from constructs.nag import acknowledge, checkov_skip


def budget_arn(scope: Construct, budget_name: str) -> str:
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:budgets::{stack.account}:budget/{budget_name}"


class BudgetKillSwitchTopic(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, budget_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.budget_name = budget_name
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{prefix}-budget-kill-switch",
            display_name=f"{prefix} budget kill switch",
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsPublish",
                principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnLike": {"aws:SourceArn": budget_arn(self, budget_name)},
                },
            )
        )
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "AWS Budgets cannot publish to a topic encrypted with the AWS-managed SNS key; the "
            "payload is the budget's name and amounts, and a customer-managed key would bill "
            "every month for no confidentiality gain.",
        )
        checkov_skip(
            self.topic,
            CKV_AWS_26="Same reason as AwsSolutions-SNS2: AWS Budgets cannot publish to a topic "
            "under the AWS-managed key, and the payload is not sensitive.",
        )

    def subscribe(self, function: lambda_.IFunction, *, alarms: sns.ITopic) -> None:
        """`function` (the kill switch) receives the budget's alerts and may raise alarms.

        Only this topic may invoke it through SNS: the subscription's Lambda permission
        names the topic's ARN (the function also checks the record's topic itself)."""
        self.topic.add_subscription(subscriptions.LambdaSubscription(function))
        alarms.grant_publish(function)


__all__ = ["BudgetKillSwitchTopic", "budget_arn"]
