"""Find the servers and tools a test needs; skip with the reason, or fail when CI requires them.

`TVAULT_TEST_REQUIRE` is a comma-separated list (`postgres,s3,age,ssh-keygen,...`). A test that
needs something on that list fails instead of skipping, so a CI run can never go green by
skipping what it was meant to exercise.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def required() -> frozenset[str]:
    """Return the names that must be available in this run."""
    raw = os.environ.get("TVAULT_TEST_REQUIRE", "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def unavailable(name: str, reason: str) -> NoReturn:
    """Skip the current test because `name` is missing, or fail if the run requires `name`."""
    if name in required():
        pytest.fail(f"{name} is required by TVAULT_TEST_REQUIRE but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


def tool(name: str) -> str:
    """Return the path of the command-line tool `name`, or skip/fail as `unavailable` does."""
    path = shutil.which(name)
    if path is None:
        unavailable(name, f"`{name}` is not on PATH (run `make tools`)")
    return path
