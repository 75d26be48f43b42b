"""AWS Budgets' part in local mode: the monthly budget's alert, delivered as AWS does.

Budgets has no emulator; what it does for the platform is publish its plain-text alert
to the kill-switch topic when the month's actual cost passes the budget. Here that alert
is written from the template's own `AWS::Budgets::Budget` (its name and amount) and
published to the emulated topic the kill-switch function is given (`BUDGET_TOPIC_ARN`),
so it reaches the function through the same SNS subscription as in AWS
(`POST /_local/budget-notification`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


class BudgetNotFound(LookupError):
    """The templates declare no monthly budget, or no function is given its topic."""


@dataclass(frozen=True)
class Budget:
    name: str
    amount: Decimal


def template_budget(stacks: Iterable[Any]) -> Budget:
    for stack in stacks:
        for resource in stack.resources.values():
            if resource.get("Type") != "AWS::Budgets::Budget":
                continue
            data = resource.get("Properties", {}).get("Budget", {})
            limit = data.get("BudgetLimit", {})
            return Budget(name=str(data["BudgetName"]), amount=Decimal(str(limit["Amount"])))
    raise BudgetNotFound("the synthesized templates declare no AWS::Budgets::Budget")


def alert_text(
    budget: Budget, *, percent: Decimal, kind: str = "ACTUAL", account_id: str, now: datetime
) -> str:
    """The alert as AWS Budgets words it (the function reads its `Key: value` lines)."""
    threshold = budget.amount * percent / 100
    actual = threshold + Decimal("0.01")
    return (
        f"AWS Budget Notification {now.astimezone(UTC):%B %d, %Y}\n"
        f"AWS Account {account_id}\n\n"
        "Dear AWS Customer,\n\n"
        f"You requested that we alert you when the {kind} Cost associated with your "
        f"{budget.name} budget is greater than ${threshold:,.2f} for the current month. "
        f"The {kind} Cost associated with this budget is ${actual:,.2f}.\n\n"
        f"Budget Name: {budget.name}\n"
        "Budget Type: Cost\n"
        f"Budgeted Amount: ${budget.amount:,.2f}\n"
        f"Alert Type: {kind}\n"
        f"Alert Threshold: > ${threshold:,.2f}\n"
        f"{kind} Amount: ${actual:,.2f}\n"
    )


def publish_alert(
    sns: Any,
    topic_arn: str,
    budget: Budget,
    *,
    percent: Decimal = Decimal(100),
    account_id: str,
) -> str:
    """Publish the alert to the budget topic, as Budgets does; returns the MessageId."""
    if not topic_arn:
        raise BudgetNotFound("no function is given BUDGET_TOPIC_ARN: there is no kill switch")
    answer = sns.publish(
        TopicArn=topic_arn,
        Subject=f"AWS Budgets: {budget.name} has exceeded your alert threshold",
        Message=alert_text(budget, percent=percent, account_id=account_id, now=datetime.now(UTC)),
    )
    return str(answer["MessageId"])
