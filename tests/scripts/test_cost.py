"""make cost: figures follow the templates and the config, from the one price table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_builder import pricing
from tests.infra.conftest import default_context, make_app
from tests.scripts.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
cost = load_script("cost")


@pytest.fixture(scope="module")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default app, synthesized once for this module."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, _ = make_app(outdir, nag=False)
    app.synth()
    return outdir


def alarm(metrics: int = 0) -> dict[str, Any]:
    properties: dict[str, Any] = {"Threshold": 1}
    if metrics:
        properties["Metrics"] = [{"Id": f"m{i}", "MetricStat": {}} for i in range(metrics)] + [
            {"Id": "e", "Expression": "m0+m1"}
        ]
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def idle_total(resources: dict[str, Any]) -> float:
    return sum(i.monthly_usd for i in cost.idle_costs({"t": {"Resources": resources}}))


def config(**overrides: Any) -> Any:
    return cost.config_from(default_context() | overrides)


def test_default_platform_idles_within_the_target(cdk_out: Path) -> None:
    idle = sum(i.monthly_usd for i in cost.idle_costs(cost.load_templates(cdk_out)))
    assert 0 < idle <= cost.IDLE_TARGET_USD


def test_adding_an_alarm_adds_its_monthly_price(cdk_out: Path) -> None:
    templates = cost.load_templates(cdk_out)
    before = sum(i.monthly_usd for i in cost.idle_costs(templates))
    templates["Extra"] = {"Resources": {"NewAlarm": alarm()}}
    after = sum(i.monthly_usd for i in cost.idle_costs(templates))
    assert after - before == pytest.approx(pricing.ALARM_MONTH.usd)


def test_a_metric_math_alarm_is_billed_per_metric() -> None:
    assert idle_total({"A": alarm(metrics=3)}) == pytest.approx(3 * pricing.ALARM_MONTH.usd)


def test_nat_gateways_keys_and_secrets_bill_while_idle() -> None:
    resources = {
        "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
    }
    expected = (
        pricing.NAT_GATEWAY_HOUR.usd * pricing.HOURS_PER_MONTH
        + pricing.KMS_KEY_MONTH.usd
        + pricing.SECRET_MONTH.usd
    )
    assert idle_total(resources) == pytest.approx(expected)


def test_a_timed_function_is_priced_by_its_rate_and_memory() -> None:
    def template(rate: str, memory: int) -> dict[str, Any]:
        return {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"MemorySize": memory, "Architectures": ["arm64"]},
            },
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": rate,
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}],
                },
            },
        }

    every_minute = idle_total(template("rate(1 minute)", 512))
    assert every_minute > 0
    assert idle_total(template("rate(5 minutes)", 512)) == pytest.approx(every_minute / 5)
    assert idle_total(template("rate(1 minute)", 1024)) > every_minute


def test_a_bigger_task_costs_more_per_test() -> None:
    small = cost.one_test(config())
    large = cost.one_test(config(testTaskCpu=1024, testTaskMemoryMiB=2048))
    for model in small:
        assert large[model]["compute"] > small[model]["compute"]
        assert large[model]["model"] == small[model]["model"]


def test_spot_is_priced_below_on_demand() -> None:
    spot = cost.one_test(config(testTaskUseSpot=True))
    on_demand = cost.one_test(config(testTaskUseSpot=False))
    model = next(iter(spot))
    assert spot[model]["compute"] < on_demand[model]["compute"]


def test_a_longer_time_limit_costs_more_per_test() -> None:
    model = next(iter(cost.one_test(config())))
    assert (
        cost.one_test(config(maxTestMinutes=10))[model]["compute"]
        > cost.one_test(config(maxTestMinutes=5))[model]["compute"]
    )


def test_every_allowed_model_has_a_price() -> None:
    assert set(config().allowed_models) <= set(pricing.MODELS)


def test_an_unpriced_model_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no price for model"):
        pricing.model_cost("example.unpriced-v1:0", 1, 1)


def test_fargate_bills_at_least_a_minute() -> None:
    size = pricing.TaskSize(256, 512, "ARM64", spot=False)
    assert pricing.compute_cost(size, 5) == pytest.approx(pricing.compute_cost(size, 60))


def test_scenario_scales_with_the_quota(cdk_out: Path) -> None:
    templates = cost.load_templates(cdk_out)
    ten = cost.scenario(config(freeTestsPerMonth=10), 0.0, templates)
    twenty = cost.scenario(config(freeTestsPerMonth=20), 0.0, templates)
    assert twenty["tests"] == 2 * ten["tests"] == 2000
    assert twenty["tests_usd"] == pytest.approx(2 * ten["tests_usd"])


def test_the_customer_template_costs_nothing_while_idle() -> None:
    items = cost.customer_idle(ROOT / "dist" / "customer-onboarding.yaml")
    assert sum(i.monthly_usd for i in items) == 0
    assert any(i.resource == "Log groups" and i.count > 0 for i in items)


def test_make_cost_prints_the_four_figures(
    cdk_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["--cdk-out", str(cdk_out)]) == 0
    out = capsys.readouterr().out
    for heading in (
        "(a) The platform idle",
        "(b) One test",
        "(c) 100 free users",
        "(d) A customer",
    ):
        assert heading in out
    for model in json.loads((ROOT / "cdk.json").read_text())["context"]["allowedModels"]:
        assert model in out


def test_a_function_polling_a_queue_bills_for_its_empty_polls() -> None:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {}}
    mapping = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}},
    }
    stream = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]}},
    }
    table = {"Type": "AWS::DynamoDB::Table", "Properties": {}}
    polled = idle_total({"Queue": queue, "Mapping": mapping})
    assert polled == pytest.approx(
        cost.SQS_POLLERS
        * cost.SQS_POLLS_PER_MINUTE
        * 60
        * pricing.HOURS_PER_MONTH
        * pricing.SQS_REQUEST.usd
    )
    assert idle_total({"Table": table, "Stream": stream}) == 0
