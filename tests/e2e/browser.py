"""Test helper: Debian's Chromium driven by Playwright for Python (issue 19 point 10).

Never a browser download: `make tools` installs the `chromium` package, and Playwright is
pointed at its binary. The flags keep the browser from reaching any network of its own.
Screenshots go to `tests/artifacts/` (ignored by git), for a person to look at after a run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TVAULT_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One Chromium for the module's tests (each test opens its own context)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: run `make tools` (README, 'Tests')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot of `page` as `tests/artifacts/NAME.png`."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
