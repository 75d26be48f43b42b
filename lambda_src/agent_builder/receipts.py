"""A finished platform run's receipt: its tokens, its time, and what they cost the owner.

Priced from the one price table (agent_builder/pricing.py), the same `make cost` uses.
The tokens are what the agent runner reported in the run's result.json (written by the
runner's task role only: a user can neither write it nor choose what it says); the
duration is ECS's startedAt -> stoppedAt, and compute is priced the way Fargate bills:
from the image pull (pullStartedAt, else startedAt) to the stop, at least a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from agent_builder import pricing, timeutil

logger = Logger(child=True)


def usd(amount: float) -> Decimal:
    """Dollars to a millionth, as DynamoDB stores them (decimal: no float noise)."""
    return Decimal(f"{amount:.6f}")


@dataclass(frozen=True)
class Spend:
    """What a run adds to its user's month: tokens and estimated dollars."""

    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    try:
        span = timeutil.parse_iso(end) - timeutil.parse_iso(start)
    except ValueError:
        return 0.0
    return max(0.0, span.total_seconds())


def tokens(result: dict[str, Any] | None) -> tuple[int, int]:
    """(input, output) tokens from the runner's result.json; 0 for what it lacks."""
    usage = (result or {}).get("usage")
    usage = usage if isinstance(usage, dict) else {}

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    return count("inputTokens"), count("outputTokens")


def receipt(
    *,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    started_at: str | None,
    stopped_at: str | None,
    billed_from: str | None,
    size: pricing.TaskSize,
) -> tuple[dict[str, Any], Spend]:
    """The run's receipt (as stored and shown) and what it adds to the month."""
    duration = _seconds(started_at, stopped_at)
    billed = _seconds(billed_from or started_at, stopped_at)
    compute = pricing.compute_cost(size, billed) if billed_from or started_at else 0.0
    model_usd = 0.0
    if model and (input_tokens or output_tokens):
        try:
            model_usd = pricing.model_cost(model, input_tokens, output_tokens)
        except KeyError:
            # tests/runtime/test_receipts.py keeps every allowed model priced.
            logger.error("no price for the run's model: its receipt omits the model", model=model)
    total = usd(compute) + usd(model_usd)
    document = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "durationSeconds": round(duration, 3),
        "estimatedCostUsd": {"compute": usd(compute), "model": usd(model_usd), "total": total},
        "pricedAt": pricing.PRICED_AT,
    }
    return document, Spend(input_tokens, output_tokens, total)
