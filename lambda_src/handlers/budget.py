"""SNS (the budget topic): AWS Budgets' ACTUAL alert at 100 % -> the free tier pauses.

Each record is judged on its own (services/free_tier.py): a message that cannot be
believed is refused and audited, and changes nothing. An error raises, so Lambda's
asynchronous retries deliver the record again (pausing twice changes nothing).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from agent_builder.wiring import budget_services

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        logger.warning("not an SNS event: nothing to do")
        return {"results": []}
    switch = budget_services()
    return {
        "results": [
            switch.on_notification(record if isinstance(record, dict) else {}) for record in records
        ]
    }
