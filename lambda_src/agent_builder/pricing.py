"""The one price table: what a run costs the platform owner, and what the platform idles at.

Used by run receipts (estimatedCostUsd) and by `make cost` (scripts/cost.py), so the two
never disagree. Prices are AWS's public on-demand list prices for us-east-1 in USD; other
regions are typically 0-30 % higher. Every price carries its source and the date it was
read; a price change is a one-line edit here, and the tests recompute from this table.

Estimates, not invoices: they leave out free tiers (which only lower the bill), taxes,
and data transfer (agent tasks send a few kilobytes to Bedrock).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PRICED_AT = "2026-03-01"
REGION = "us-east-1"
HOURS_PER_MONTH = 730  # AWS's own convention for monthly figures


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


FARGATE_PAGE = "https://aws.amazon.com/fargate/pricing/"
FARGATE: Mapping[str, Mapping[str, Price]] = {
    "X86_64": {
        "vcpu_hour": Price(0.04048, "per vCPU-hour, Linux/x86", FARGATE_PAGE),
        "gb_hour": Price(0.004445, "per GB-hour, Linux/x86", FARGATE_PAGE),
    },
    "ARM64": {
        "vcpu_hour": Price(0.03238, "per vCPU-hour, Linux/ARM", FARGATE_PAGE),
        "gb_hour": Price(0.00356, "per GB-hour, Linux/ARM", FARGATE_PAGE),
    },
}
# Fargate Spot's price moves with spare capacity; AWS quotes "up to 70 % off". Priced at
# that discount, so a Spot estimate is the low end: the same run on demand is the high end.
SPOT_FACTOR = Price(0.30, "fraction of the on-demand price (AWS: up to 70 % off)", FARGATE_PAGE)
# Every test task gets a public IPv4 address (public subnets, no NAT gateway).
PUBLIC_IPV4_HOUR = Price(
    0.005, "per public IPv4 address-hour", "https://aws.amazon.com/vpc/pricing/"
)
# Fargate bills per second with a one-minute minimum.
FARGATE_MINIMUM_SECONDS = 60

BEDROCK_PAGE = "https://aws.amazon.com/bedrock/pricing/"


@dataclass(frozen=True)
class ModelPrice:
    input_per_1k: float
    output_per_1k: float
    source: str = BEDROCK_PAGE


# On-demand text tokens, per 1,000. A model allowed in config but missing here fails
# `make cost` and the receipts test, so a new model cannot ship unpriced.
MODELS: Mapping[str, ModelPrice] = {
    "amazon.nova-micro-v1:0": ModelPrice(0.000035, 0.00014),
    "amazon.nova-lite-v1:0": ModelPrice(0.00006, 0.00024),
    "amazon.nova-pro-v1:0": ModelPrice(0.0008, 0.0032),
    "anthropic.claude-3-haiku-20240307-v1:0": ModelPrice(0.00025, 0.00125),
    "anthropic.claude-3-5-haiku-20241022-v1:0": ModelPrice(0.0008, 0.004),
}

CLOUDWATCH_PAGE = "https://aws.amazon.com/cloudwatch/pricing/"
ALARM_MONTH = Price(0.10, "per standard-resolution alarm metric-month", CLOUDWATCH_PAGE)
METRIC_MONTH = Price(
    0.30, "per custom metric-month (first 10,000), prorated hourly", CLOUDWATCH_PAGE
)
LOG_INGESTION_GB = Price(0.50, "per GB ingested (standard class)", CLOUDWATCH_PAGE)
LOG_STORAGE_GB_MONTH = Price(0.03, "per GB-month stored", CLOUDWATCH_PAGE)
KMS_KEY_MONTH = Price(1.00, "per customer managed key-month", "https://aws.amazon.com/kms/pricing/")
SECRET_MONTH = Price(0.40, "per secret-month", "https://aws.amazon.com/secrets-manager/pricing/")
NAT_GATEWAY_HOUR = Price(0.045, "per NAT gateway-hour", "https://aws.amazon.com/vpc/pricing/")
INTERFACE_ENDPOINT_HOUR = Price(
    0.01, "per interface endpoint-hour, per AZ", "https://aws.amazon.com/privatelink/pricing/"
)
SQS_REQUEST = Price(
    0.40 / 1_000_000, "per request (standard queue)", "https://aws.amazon.com/sqs/pricing/"
)
ECR_STORAGE_GB_MONTH = Price(0.10, "per GB-month stored", "https://aws.amazon.com/ecr/pricing/")
LAMBDA_PAGE = "https://aws.amazon.com/lambda/pricing/"
LAMBDA_REQUEST = Price(0.20 / 1_000_000, "per request", LAMBDA_PAGE)
LAMBDA_GB_SECOND = {
    "arm64": Price(0.0000133334, "per GB-second, Arm", LAMBDA_PAGE),
    "x86_64": Price(0.0000166667, "per GB-second, x86", LAMBDA_PAGE),
}


@dataclass(frozen=True)
class TaskSize:
    cpu_units: int
    memory_mib: int
    architecture: str  # ARM64 | X86_64
    spot: bool


def compute_cost(size: TaskSize, seconds: float) -> float:
    """Fargate vCPU + memory + the task's public IPv4 address for `seconds`."""
    prices = FARGATE[size.architecture]
    hours = max(seconds, FARGATE_MINIMUM_SECONDS) / 3600
    rate = (size.cpu_units / 1024) * prices["vcpu_hour"].usd + (size.memory_mib / 1024) * prices[
        "gb_hour"
    ].usd
    if size.spot:
        rate *= SPOT_FACTOR.usd
    return hours * (rate + PUBLIC_IPV4_HOUR.usd)


def model_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    try:
        price = MODELS[model]
    except KeyError:
        raise KeyError(
            f"no price for model {model!r}: add it to agent_builder/pricing.py"
        ) from None
    return input_tokens / 1000 * price.input_per_1k + output_tokens / 1000 * price.output_per_1k


def sources() -> list[str]:
    """Every page a price here comes from, for the figures' footnote."""
    pages = {FARGATE_PAGE, BEDROCK_PAGE, CLOUDWATCH_PAGE, LAMBDA_PAGE, PUBLIC_IPV4_HOUR.source}
    pages |= {p.source for p in (KMS_KEY_MONTH, SECRET_MONTH, ECR_STORAGE_GB_MONTH)}
    pages |= {INTERFACE_ENDPOINT_HOUR.source, SQS_REQUEST.source}
    return sorted(pages)
