"""Rules every unit test keeps: it starts no process (tests/README.md); `tvault`'s command line
is built once per process, not at each in-process run; and the vaults' engines share their
compiled statements.

A test that runs a tool (`age`, `ssh-keygen`), a server or a helper process belongs in
tests/integration or tests/e2e; there it may take its time, and here `pytest tests/unit` stays
under a minute. The rule is checked, not trusted: while a unit test runs (its fixtures
included), starting a process raises `ProcessStarted`, through Python's audit events, which
every way of starting one passes (`subprocess`, `os.fork`, `os.posix_spawn`, `os.exec*`,
`os.system`, `multiprocessing`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
import typer.main
import typer.testing
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import configure_mappers
from typer import _click

from tests.conftest import in_memory
from tests.unit.statements_support import SharedStatements
from vault.db.base import Base

SPAWNING = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.system"}
)


class ProcessStarted(RuntimeError):
    """A unit test tried to start a process."""


class _Guard:
    on = False
    started: ClassVar[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _Guard.on and event in SPAWNING:
        what = f"{event} {args[:2]!r}"
        _Guard.started.append(what)
        raise ProcessStarted(
            f"a unit test started a process ({what}): it belongs in tests/integration or"
            " tests/e2e (tests/README.md)"
        )


sys.addaudithook(_audit)


@contextmanager
def _guarded() -> Iterator[None]:
    _Guard.on = True
    try:
        yield
    finally:
        _Guard.on = False


# Around each phase of every test in this folder (its fixtures of any scope included).
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _Guard.started.clear()
    with _guarded():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _guarded():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    with _guarded():
        result = yield
    # Even if the code under test caught `ProcessStarted`, the test fails.
    if _Guard.started:
        started, _Guard.started = list(_Guard.started), []
        pytest.fail(f"{item.nodeid} started a process: {'; '.join(started)}")
    return result


@pytest.fixture(autouse=True, scope="session")
def _commands_built_once() -> Iterator[None]:
    """typer's `CliRunner.invoke` turns the Typer app into a click command at every run (for
    `tvault`, a tenth of a second: every option's annotations evaluated again). The command is
    the same each time and click makes a new context per run, so it is built once per app."""
    build = typer.main.get_command
    built: weakref.WeakKeyDictionary[typer.Typer, _click.Command] = weakref.WeakKeyDictionary()

    def built_once(app: typer.Typer) -> _click.Command:
        if app not in built:
            built[app] = build(app)
        return built[app]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", built_once)
        yield


@pytest.fixture(autouse=True, scope="session")
def _statements_compiled_once() -> Iterator[None]:
    """Every engine of the process, the vaults' and the tests' own, and the ORM's statements
    for writing each mapped class's rows (cached by SQLAlchemy on the class, as the engine's,
    keyed by the dialect object) share one `SharedStatements` cache
    (tests/unit/statements_support.py), as a production engine shares its own across
    requests."""
    shared = SharedStatements()

    def share(connection: Connection) -> None:
        # An engine that turned caching off (None) keeps it off.
        if connection.engine._compiled_cache is not None:
            connection.engine._compiled_cache = shared

    configure_mappers()
    for mapper in Base.registry.mappers:
        mapper.__dict__["_compiled_cache"] = shared
    event.listen(Engine, "engine_connect", share)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", share)
        for mapper in Base.registry.mappers:
            mapper.__dict__.pop("_compiled_cache", None)


@pytest.fixture
def disk_path() -> Iterator[Path]:
    """A new empty directory on a file system on a disk, removed afterwards: `tmp_path` of a
    unit run is on a tmpfs (tests/conftest.py), and a test of what the vault refuses to put
    on a disk needs a disk. Skipped, saying so, if none of the usual places is on one."""
    for place in (Path.home(), Path("/var/tmp"), Path(tempfile.gettempdir())):
        if place.is_dir() and os.access(place, os.W_OK) and not in_memory(place):
            with tempfile.TemporaryDirectory(dir=place, prefix="tvault-test-") as made:
                yield Path(made)
            return
    pytest.skip("no writable directory on a disk file system (home, /var/tmp, the temp dir)")
