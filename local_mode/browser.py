"""Debian's Chromium driven by Playwright: how tests/web and scripts/bench_web.py open the
console. Playwright's own browser download needs the internet, so the system Chromium
(`apt-get install chromium`, which `make setup` does as root) is launched instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
MISSING = (
    "Chromium is missing: install Debian's package (sudo apt-get install -y chromium), "
    "or run `make setup` as root, which does"
)


def chromium_executable() -> str | None:
    """The system Chromium's path, or None when it is not installed."""
    return shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from a started `sync_playwright()`."""
    executable = chromium_executable()
    if executable is None:
        raise RuntimeError(MISSING)
    return playwright.chromium.launch(
        executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
    )
