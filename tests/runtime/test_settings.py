"""Settings parsed once from the environment; one client factory honouring boto3's own env."""

from __future__ import annotations

import pytest

from agent_builder import clients, wiring
from agent_builder.settings import SettingsError, get_settings, parse_settings
from tests.runtime.support import Platform


def test_settings_parse_the_contract_environment(platform: Platform) -> None:
    settings = get_settings()

    assert settings.use_spot is True
    assert settings.subnet_ids == (platform.subnet_id,)
    assert settings.free_tests_per_month == 3
    assert settings.region == "us-east-1"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RUNS_TABLE", "", "RUNS_TABLE is required"),
        ("USE_SPOT", "yes", "USE_SPOT must be"),
        ("FREE_TESTS_PER_MONTH", "ten", "FREE_TESTS_PER_MONTH must be a positive integer"),
        ("MAX_TEST_MINUTES", "0", "MAX_TEST_MINUTES must be a positive integer"),
        ("ALLOWED_MODELS", " , ", "ALLOWED_MODELS must list"),
    ],
)
def test_bad_environment_names_the_variable(
    platform: Platform, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_settings({**platform.env, name: value})


def test_clients_use_aws_endpoint_url_without_a_switch_of_their_own(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    wiring.reset()

    assert clients.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:4566"
    assert clients.client("dynamodb").meta.region_name == "us-east-1"
    wiring.reset()


def test_importing_the_handlers_creates_no_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'lambda_src');"
        "import handlers.api, handlers.task_events, handlers.sweeper, handlers.registration;"
        "assert 'boto3' not in sys.modules, 'boto3 imported at import time';"
        "assert 'moto' not in sys.modules"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
