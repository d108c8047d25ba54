"""Fixtures shared by every test package."""

from __future__ import annotations

import gc
import importlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.scratch import ScratchError, memory_dir
from tests.postgres_support import fresh_schema
from tests.services import unavailable

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
UNIT = Path(__file__).resolve().parent / "unit"


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """How many processes `-n auto` (pyproject's addopts) starts: one per core (xdist's own
    count, None) when every path asked for is a directory of unit tests, as in `pytest
    tests/unit`; none otherwise. A file or a single test starts faster in one process, and the
    integration, browser and crash tests, which start servers and processes and time them, run
    one at a time. An explicit `-n N` is obeyed as given (tests/README.md)."""
    paths = _asked_for(config)
    if paths and all(path.is_dir() and path.is_relative_to(UNIT) for path in paths):
        return None
    return 0


def _asked_for(config: pytest.Config) -> list[Path]:
    return [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]


# Where a run of unit tests keeps its temporary directories (below).
MEMORY_TEMP_ROOT = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    """A run of unit tests only (every path asked for under tests/unit) keeps its temporary
    directories (`tmp_path`: its vaults, their databases and objects) on the tmpfs
    /dev/shm, through pytest's `PYTEST_DEBUG_TEMPROOT`: the same files and the same calls,
    but the fsyncs of thousands of SQLite commits and stored objects cost nothing there
    (about 7 s of waiting in `pytest tests/unit`; the run takes about 400 MB, and pytest keeps
    the last three runs). Not when `--basetemp` or `PYTEST_DEBUG_TEMPROOT` is given, nor
    without a tmpfs there; the integration and end-to-end tests, which write larger files and
    run the vault's processes as in production, keep the system's temporary directory. A unit
    test that needs a directory on a disk asks for `disk_path` (tests/unit/conftest.py)."""
    paths = _asked_for(config)
    if (
        paths
        and all(path.is_relative_to(UNIT) for path in paths)
        and config.option.basetemp is None
        and "PYTEST_DEBUG_TEMPROOT" not in os.environ
        and in_memory(MEMORY_TEMP_ROOT)
    ):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(MEMORY_TEMP_ROOT)


def in_memory(path: Path) -> bool:
    """Whether `path` is a directory on a tmpfs or ramfs this user may write."""
    try:
        memory_dir(path)
    except ScratchError:
        return False
    return True


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tune the garbage collector for a long run of many tests (measured in `pytest
    tests/unit`, per worker; tests/README.md):

    - Everything alive once the tests are collected (modules, classes, the test items) lives
      until the process ends: it is moved out of the collector's reach (`gc.freeze`), so the
      full collections do not walk it again each time (3.5 s to 1.8 s).
    - Collections of the youngest objects wait for 10 000 new ones instead of 700, and full
      collections come less often (4.3 s to 3.3 s in all). Every object is collected as
      before; garbage lives a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In the process that hands tests to workers (`-n`), import Hypothesis while the workers
    collect and run: its pytest plugin imports it there only for the final summary, and at
    that moment the import (about a second) was all that the run still waited for."""
    if session.config.pluginmanager.has_plugin("dsession"):
        threading.Thread(
            target=importlib.import_module,
            args=("hypothesis.internal.observability",),
            name="import-hypothesis",
            daemon=True,
        ).start()


@pytest.fixture(autouse=True)
def _private_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tvault ingest` keeps resume records under $XDG_STATE_HOME: never the developer's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a reachable PostgreSQL (`TVAULT_TEST_DATABASE_URL`, default the local one)."""
    url = os.environ.get("TVAULT_TEST_DATABASE_URL", DEFAULT_PG_URL)
    try:
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        unavailable("postgres", f"cannot connect to {url}: {exc}")
    yield url


@pytest.fixture
def memory_scratch() -> Iterator[Path]:
    """A fresh private directory on /dev/shm (a tmpfs): where a worker may decrypt originals."""
    with tempfile.TemporaryDirectory(prefix="tvault-test-scratch-", dir="/dev/shm") as made:
        yield Path(made)


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh PostgreSQL schema; dropped afterwards."""
    with fresh_schema(postgres_url) as url:
        yield url
