"""One local mode per module for the journeys (local_mode/harness.py starts it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_mode.harness import LocalMode, start_local_mode

TESTS_PER_MONTH = 3


def running_local_mode(
    tmp_path_factory: pytest.TempPathFactory, *context: str, module: str = "local_mode"
) -> Iterator[LocalMode]:
    """Local mode (`python -m <module>`) for a module's tests, killed after them."""
    log_path = tmp_path_factory.mktemp("local-mode") / "local-mode.log"
    local = start_local_mode(log_path, *context, module=module)
    try:
        yield local
    finally:
        if local.process.poll() is None:
            local.process.kill()
            local.process.wait()


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    """One local mode per module, synthesized with a small quota (journeys spend it)."""
    yield from running_local_mode(
        tmp_path_factory, f"freeTestsPerMonth={TESTS_PER_MONTH}", "launchesPerMinute=100"
    )
