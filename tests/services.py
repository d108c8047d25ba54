"""Find the servers and tools a test needs; skip with the reason, or fail when CI requires them.

`TVAULT_TEST_REQUIRE` is a comma-separated list (`postgres,s3,age,ssh-keygen,...`). A test that
needs something on that list fails instead of skipping, so a CI run can never go green by
skipping what it was meant to exercise.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
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


def vectors(folder: str) -> Path:
    """Return the public test data `folder` (`TVAULT_TEST_VECTORS`, else the `shared/vectors`
    folder beside the project or one of its parents), or skip/fail as `unavailable` does.

    The data stays where it was published to, with its source commit in `COMMIT`; the tests
    read it there and never copy it into the project.
    """
    root = Path(__file__).resolve().parents[1]
    configured = os.environ.get("TVAULT_TEST_VECTORS")
    bases = [Path(configured)] if configured else [p / "shared" / "vectors" for p in root.parents]
    for base in bases:
        if (base / folder / "COMMIT").is_file():
            return base / folder
    unavailable("vectors", f"no {folder}/COMMIT under TVAULT_TEST_VECTORS or shared/vectors")
