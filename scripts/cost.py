"""What the platform costs (make cost): python scripts/cost.py [-c key=value ...]

Reads the synthesized templates (cdk.out/, from `make synth`), cdk.json's context and
the exported customer template (dist/customer-onboarding.yaml), and prints, from the one
price table (lambda_src/agent_builder/pricing.py, shared with run receipts):

(a) the platform's fixed monthly cost while idle, resource by resource;
(b) the cost of one test at the configured size, time limit and models (compute + the
    model at maxOutputTokens with the largest input the API accepts: a ceiling);
(c) the seed's scenario: 100 free users each using their whole monthly quota;
(d) the customer's idle cost for the onboarding template.

Figures come from what the templates declare, so adding an alarm or changing the task
size changes them. Exits 1 when the idle cost is above IDLE_TARGET_USD.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambda_src")]

from agent_builder import pricing  # noqa: E402
from agent_builder.validation import MAX_INPUT_BYTES, MAX_INSTRUCTIONS_BYTES  # noqa: E402
from local_mode import assembly  # noqa: E402
from stacks.config import ConfigError, PlatformConfig  # noqa: E402

# Issue 13's target for the default configuration. What would break it is opt-in: the KMS
# key for stored IAM Identity Center tokens ($1.00 a month) exists only with
# enterpriseSso=true, and Lambda throttles are one account-wide alarm, not one a function.
IDLE_TARGET_USD = 2.50
SCENARIO_USERS = 100
# The API's own limits on what one test sends the model; priced at one token per byte,
# an upper bound for any tokenizer that works on UTF-8 bytes.
MAX_PROMPT_BYTES = MAX_INSTRUCTIONS_BYTES + MAX_INPUT_BYTES
# Assumptions for what the templates cannot say, each printed next to its figure.
RUNNER_IMAGE_GB = 0.2  # the runner image: python slim + boto3, compressed in ECR
SCHEDULED_RUN_SECONDS = 0.5  # one sweep: ListTasks + DescribeTasks on an idle cluster
SCHEDULED_LOG_BYTES = 600  # Lambda's START/END/REPORT lines of one invocation
INSIGHTS_METRICS = 20
# Lambda polls an SQS queue it is mapped to with long polls (20 s) from about five pollers,
# whether or not messages arrive: each poll is a billed ReceiveMessage request.
SQS_POLLERS = 5
SQS_POLLS_PER_MINUTE = 3  # Container Insights metrics a cluster with test tasks publishes
FREE_BUDGETS = 2  # AWS Budgets: the first two budgets of an account cost nothing
BUDGET_MONTH = 0.62  # each further budget: $0.02 a day


@dataclass(frozen=True)
class LineItem:
    resource: str
    count: int
    monthly_usd: float
    note: str


def load_templates(outdir: Path) -> dict[str, dict[str, Any]]:
    try:
        stacks = assembly.load_stacks(outdir)
    except assembly.TemplateError as exc:
        raise SystemExit(str(exc)) from None
    return {stack.artifact_id: stack.template for stack in stacks.values()}


def _resources(templates: Mapping[str, Mapping[str, Any]]) -> Iterable[tuple[str, dict[str, Any]]]:
    for template in templates.values():
        yield from template.get("Resources", {}).items()


def _of_type(templates: Mapping[str, Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for _, r in _resources(templates) if r.get("Type") == kind]


def _alarm_metrics(alarm: Mapping[str, Any]) -> int:
    """CloudWatch bills an alarm per metric it evaluates (metric math: each MetricStat)."""
    metrics = alarm.get("Properties", {}).get("Metrics")
    if not metrics:
        return 1
    return max(1, sum(1 for m in metrics if "MetricStat" in m))


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_PER_MONTH = {"minute": 60 * 730, "hour": 730, "day": 730 / 24}


def _runs_per_month(expression: str) -> float:
    match = _RATE.match(expression)
    if not match:
        return 0.0  # cron(...) schedules: none in our templates today; priced at 0
    every, unit = int(match.group(1)), match.group(2).rstrip("s")
    return _PER_MONTH[unit] / every


def _scheduled_functions(
    templates: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, float, int, str]]:
    """(function logical id, runs a month, memory MiB, architecture) of every timed rule."""
    found = []
    for template in templates.values():
        resources = template.get("Resources", {})
        for rule in resources.values():
            if rule.get("Type") != "AWS::Events::Rule":
                continue
            properties = rule.get("Properties", {})
            runs = _runs_per_month(str(properties.get("ScheduleExpression", "")))
            for target in properties.get("Targets", []) if runs else []:
                arn = target.get("Arn", {})
                logical = str(arn.get("Fn::GetAtt", [""])[0]) if isinstance(arn, dict) else ""
                function = resources.get(logical, {})
                if function.get("Type") != "AWS::Lambda::Function":
                    continue
                fp = function.get("Properties", {})
                arch = str((fp.get("Architectures") or ["x86_64"])[0])
                found.append((logical, runs, int(fp.get("MemorySize", 128)), arch))
    return found


def _source_type(template: Mapping[str, Any], arn: Any) -> str:
    """The resource type an event source ARN points at: a GetAtt in this template, or an
    ARN literal (arn:aws:sqs:...)."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        logical = str(arn["Fn::GetAtt"][0])
        return str(template.get("Resources", {}).get(logical, {}).get("Type", ""))
    if isinstance(arn, str) and arn.startswith("arn:") and arn.split(":")[2] == "sqs":
        return "AWS::SQS::Queue"
    return ""


def _insights_enabled(cluster: Mapping[str, Any]) -> bool:
    settings = cluster.get("Properties", {}).get("ClusterSettings") or []
    return any(
        s.get("Name") == "containerInsights" and s.get("Value") in ("enabled", "enhanced")
        for s in settings
    )


def idle_costs(templates: Mapping[str, Mapping[str, Any]]) -> list[LineItem]:
    """Every resource that bills by the month or by the hour whether or not anyone uses it."""
    items: list[LineItem] = []
    alarms = _of_type(templates, "AWS::CloudWatch::Alarm")
    metrics = sum(_alarm_metrics(a) for a in alarms)
    items.append(
        LineItem(
            "CloudWatch alarms",
            len(alarms),
            metrics * pricing.ALARM_MONTH.usd,
            f"{metrics} alarm metrics x ${pricing.ALARM_MONTH.usd:.2f}",
        )
    )
    for kind, label, price in (
        ("AWS::KMS::Key", "KMS keys", pricing.KMS_KEY_MONTH.usd),
        ("AWS::SecretsManager::Secret", "Secrets Manager secrets", pricing.SECRET_MONTH.usd),
    ):
        count = len(_of_type(templates, kind))
        items.append(LineItem(label, count, count * price, f"${price:.2f} each a month"))
    nat = len(_of_type(templates, "AWS::EC2::NatGateway"))
    items.append(
        LineItem(
            "NAT gateways",
            nat,
            nat * pricing.NAT_GATEWAY_HOUR.usd * pricing.HOURS_PER_MONTH,
            "none: public subnets only" if not nat else "per hour, plus per GB processed",
        )
    )
    endpoint_azs = sum(
        len(e.get("Properties", {}).get("SubnetIds") or [1])
        for e in _of_type(templates, "AWS::EC2::VPCEndpoint")
        if e.get("Properties", {}).get("VpcEndpointType") == "Interface"
    )
    items.append(
        LineItem(
            "Interface VPC endpoints (per AZ)",
            endpoint_azs,
            endpoint_azs * pricing.INTERFACE_ENDPOINT_HOUR.usd * pricing.HOURS_PER_MONTH,
            "none" if not endpoint_azs else "per endpoint per AZ",
        )
    )
    scheduled = _scheduled_functions(templates)
    for logical, runs, memory, arch in scheduled:
        compute = runs * SCHEDULED_RUN_SECONDS * memory / 1024 * pricing.LAMBDA_GB_SECOND[arch].usd
        requests = runs * pricing.LAMBDA_REQUEST.usd
        logs = runs * SCHEDULED_LOG_BYTES / 1e9 * pricing.LOG_INGESTION_GB.usd
        items.append(
            LineItem(
                f"Timed function {logical}",
                1,
                compute + requests + logs,
                f"{runs:,.0f} runs x ~{SCHEDULED_RUN_SECONDS}s at {memory} MiB, and their logs",
            )
        )
    mappings = [
        m
        for template in templates.values()
        for m in template.get("Resources", {}).values()
        if m.get("Type") == "AWS::Lambda::EventSourceMapping"
        and _source_type(template, m.get("Properties", {}).get("EventSourceArn"))
        == "AWS::SQS::Queue"
    ]
    if mappings:
        polls = len(mappings) * SQS_POLLERS * SQS_POLLS_PER_MINUTE * 60 * pricing.HOURS_PER_MONTH
        items.append(
            LineItem(
                "Lambda polling SQS queues",
                len(mappings),
                polls * pricing.SQS_REQUEST.usd,
                f"~{polls:,.0f} empty long polls a month",
            )
        )
    clusters = _of_type(templates, "AWS::ECS::Cluster")
    insights = sum(1 for c in clusters if _insights_enabled(c))
    items.append(
        LineItem(
            "Container Insights",
            insights,
            0.0,
            "publishes metrics only while tasks run: priced per test hour in (c)",
        )
    )
    repositories = len(_of_type(templates, "AWS::ECR::Repository"))
    items.append(
        LineItem(
            "ECR image storage",
            repositories,
            repositories * RUNNER_IMAGE_GB * pricing.ECR_STORAGE_GB_MONTH.usd,
            f"~{RUNNER_IMAGE_GB} GB runner image each",
        )
    )
    budgets = len(_of_type(templates, "AWS::Budgets::Budget"))
    items.append(
        LineItem(
            "AWS Budgets",
            budgets,
            max(0, budgets - FREE_BUDGETS) * BUDGET_MONTH,
            f"the first {FREE_BUDGETS} budgets of an account are free",
        )
    )
    for kind, label, note in (
        ("AWS::EC2::FlowLog", "VPC flow logs", "per GB of traffic logged: none while idle"),
        ("AWS::Logs::LogGroup", "Log groups", "per GB ingested and stored: none while idle"),
        ("AWS::DynamoDB::Table", "DynamoDB tables", "on demand: per request, storage KBs"),
        ("AWS::S3::Bucket", "S3 buckets", "per request and GB: templates are KBs"),
        ("AWS::CloudFront::Distribution", "CloudFront distributions", "per request and GB"),
        ("AWS::ApiGatewayV2::Api", "HTTP APIs", "per request"),
        ("AWS::Lambda::Function", "Lambda functions", "per invocation (timed ones above)"),
        ("AWS::SNS::Topic", "SNS topics", "per publish: alarms and the budget's alerts only"),
        ("AWS::Cognito::UserPool", "Cognito user pools", "Lite: first 10,000 MAU free"),
    ):
        count = len(_of_type(templates, kind))
        if count:
            items.append(LineItem(label, count, 0.0, note))
    return items


def config_from(context: Mapping[str, Any]) -> PlatformConfig:
    try:
        return PlatformConfig.from_context(context.get)
    except ConfigError as exc:
        raise SystemExit(f"Invalid configuration: {exc}") from None


def test_size(config: PlatformConfig) -> pricing.TaskSize:
    return pricing.TaskSize(
        cpu_units=config.test_task_cpu,
        memory_mib=config.test_task_memory_mib,
        architecture=config.test_task_architecture,
        spot=config.test_task_use_spot,
    )


def one_test(config: PlatformConfig) -> dict[str, dict[str, float]]:
    """model -> {compute, model, total} for one test run to its time limit."""
    compute = pricing.compute_cost(test_size(config), config.max_test_minutes * 60)
    figures = {}
    for model in config.allowed_models:
        tokens = pricing.model_cost(model, MAX_PROMPT_BYTES, config.max_output_tokens)
        figures[model] = {"compute": compute, "model": tokens, "total": compute + tokens}
    return figures


def scenario(config: PlatformConfig, idle: float, templates: Mapping[str, Any]) -> dict[str, float]:
    """SCENARIO_USERS users x their whole quota, each test at its ceiling, on the dearest model."""
    tests = SCENARIO_USERS * config.free_tests_per_month
    per_test = max(f["total"] for f in one_test(config).values())
    insights = any(_insights_enabled(c) for c in _of_type(templates, "AWS::ECS::Cluster"))
    # Metrics are prorated by the hour: at worst every test runs in an hour of its own.
    active_hours = min(tests, pricing.HOURS_PER_MONTH)
    metrics = (
        active_hours * INSIGHTS_METRICS * pricing.METRIC_MONTH.usd / pricing.HOURS_PER_MONTH
        if insights
        else 0.0
    )
    return {
        "tests": tests,
        "tests_usd": tests * per_test,
        "insights_usd": metrics,
        "idle_usd": idle,
        "total_usd": tests * per_test + metrics + idle,
    }


def customer_idle(path: Path) -> list[LineItem]:
    template = yaml.safe_load(path.read_text())
    return idle_costs({"customer": template})


def _print_items(items: list[LineItem]) -> float:
    total = sum(i.monthly_usd for i in items)
    for i in items:
        print(f"  {i.resource:<36} {i.count:>4}  ${i.monthly_usd:>8.2f}   {i.note}")
    print(f"  {'total':<36} {'':>4}  ${total:>8.2f}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out")
    parser.add_argument(
        "--customer-template", type=Path, default=ROOT / "dist/customer-onboarding.yaml"
    )
    args = parser.parse_args(argv)

    try:
        config = config_from(assembly.cdk_context(assembly.context_overrides(args.context)))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    templates = load_templates(args.cdk_out)

    print(f"Prices: {pricing.REGION}, USD, read {pricing.PRICED_AT}; sources:")
    for source in pricing.sources():
        print(f"  {source}")
    print("\n(a) The platform idle, per month:")
    idle = _print_items(idle_costs(templates))

    size = test_size(config)
    print(
        f"\n(b) One test: {size.cpu_units} CPU units, {size.memory_mib} MiB, {size.architecture}"
        f"{', Spot' if size.spot else ', on demand'}, up to {config.max_test_minutes} min; "
        f"model at {config.max_output_tokens} output tokens and {MAX_PROMPT_BYTES:,} input tokens:"
    )
    for model, f in one_test(config).items():
        print(
            f"  {model:<44} compute ${f['compute']:.5f} + model ${f['model']:.5f}"
            f" = ${f['total']:.5f}"
        )

    s = scenario(config, idle, templates)
    print(
        f"\n(c) {SCENARIO_USERS} free users x {config.free_tests_per_month} tests a month "
        f"({s['tests']:,.0f} tests, each at its ceiling on the dearest model):"
    )
    print(
        f"  tests ${s['tests_usd']:.2f} + Container Insights ${s['insights_usd']:.2f} "
        f"+ idle ${s['idle_usd']:.2f} = ${s['total_usd']:.2f} a month"
    )

    print(
        f"\n(d) A customer's account with the onboarding template ({args.customer_template.name}), idle:"
    )
    _print_items(customer_idle(args.customer_template))

    if idle > IDLE_TARGET_USD:
        print(f"\nThe platform idles above ${IDLE_TARGET_USD:.2f} a month.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
