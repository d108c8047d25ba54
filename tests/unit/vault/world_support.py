"""Worlds: what a test module puts into a vault before each of its tests, built once per process.

A world (cases, grants, deposits with their sealed objects and ledger entries, an index) takes
many deposits to build, each with its seals, fsyncs and ledger appends: built again for each
test it cost most of the test. `enter` builds it once per process and database in the first
test's own vault, takes a copy of what it left (its home, and on PostgreSQL its rows), and gives
each test, the first one included, a copy of that in the test's own vault: the vault fixture's
home is replaced by a copy of the world's and its parts are opened on it again; on PostgreSQL
the working schema's rows become the world's (and go back to the template's after the test, as
`template_support.WorkingSchema` does for every test). A test that changes its world changes
only its own copy, as when it built the world itself.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.postgres_support import fresh_schema
from tests.unit.vault.template_support import PASSPHRASE, Statement, replay
from vault.compose import open_vault
from vault.parts import Vault
from vault.settings import load_settings

T = TypeVar("T")

_TABLES = (
    "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
    " AND relnamespace = current_schema()::regnamespace ORDER BY relname"
)


@dataclass(frozen=True)
class _Snapshot:
    """A world as its build left it: a copy of its home (its vault closed) and, on
    PostgreSQL, the SQL that puts its rows (kept in a schema of their own) into a schema."""

    home: Path
    reset: str | None  # on PostgreSQL: the SQL that gives a schema the kept rows
    value: Any
    day: date  # the UTC day it was built: a test may ask for what was deposited "today"


# The process's worlds, by (name, database): made by the first test that asks.
_WORLDS: dict[tuple[str, str], _Snapshot] = {}


def enter(
    request: pytest.FixtureRequest, vault: Vault, name: str, build: Callable[[Vault], T]
) -> T:
    """Put the world `name` into `vault` (a fresh vault of the `vault` fixture, its index not
    opened yet) and return a copy of what `build` returned for it.

    `build(vault)` runs once per process and database, in the first such test's vault; it must
    make the world from the vault alone (so that every copy is what a build would have made)
    and return plain data (ids), not objects that hold the vault's parts."""
    assert vault.index is None, "a world is entered before the test opens the index"
    database = "sqlite" if vault.settings.database_url is None else "postgres"
    snapshot = _WORLDS.get((name, database))
    if snapshot is None or snapshot.day != _today():  # a world is never older than today
        day = _today()
        value = build(vault)
        snapshot = _WORLDS[name, database] = _take(request, vault, name, value, day)
    _restore(vault, snapshot)
    return copy.deepcopy(snapshot.value)  # type: ignore[no-any-return]


def _today() -> date:
    return datetime.now(UTC).date()


def _take(
    request: pytest.FixtureRequest, vault: Vault, name: str, value: object, day: date
) -> _Snapshot:
    vault.close()
    vault.index = None
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    home = factory.mktemp(f"world-{name}") / "vault"
    shutil.copytree(vault.settings.home, home)
    rows_url = reset = None
    if vault.settings.database_url is not None:
        schema = ExitStack()
        rows_url = schema.enter_context(
            fresh_schema(request.getfixturevalue("postgres_url"), "world", durable=False)
        )
        request.config.add_cleanup(schema.close)
        _copy_rows(vault.settings.database_url, rows_url)
        reset = _reset_sql(rows_url)
    return _Snapshot(home, reset, copy.deepcopy(value), day)


def _schema_and_tables(url: str) -> tuple[str, list[str]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            schema = str(connection.scalar(text("SELECT current_schema()")))
            return schema, list(connection.scalars(text(_TABLES)))
    finally:
        engine.dispose()


def _copy_rows(source_url: str, target_url: str) -> None:
    """Copy every table of the schema of `source_url` (rows only) into that of `target_url`."""
    source, tables = _schema_and_tables(source_url)
    engine = create_engine(target_url, poolclass=NullPool)
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.begin() as connection:
            for table in tables:
                # The names come from the catalog, quoted.
                connection.execute(
                    text(
                        f"CREATE TABLE {quote(table)} AS"  # noqa: S608
                        f" SELECT * FROM {quote(source)}.{quote(table)}"
                    )
                )
    finally:
        engine.dispose()


def _reset_sql(rows_url: str) -> str:
    """The SQL that makes the rows of every table of a schema those kept in `rows_url`'s."""
    rows, tables = _schema_and_tables(rows_url)
    engine = create_engine(rows_url, poolclass=NullPool)  # for its quoting only: never connects
    quote = engine.dialect.identifier_preparer.quote
    # As WorkingSchema.restore: the triggers (the append-only ledger's among them) are off for
    # this one transaction, which only puts rows back.
    reset = ["SET LOCAL session_replication_role = replica"]
    reset += [f"DELETE FROM {quote(table)}" for table in tables]  # noqa: S608
    reset += [
        f"INSERT INTO {quote(table)} SELECT * FROM {quote(rows)}.{quote(table)}"  # noqa: S608
        for table in tables
    ]
    return ";\n".join(reset)


def _restore(vault: Vault, snapshot: _Snapshot) -> None:
    """Replace `vault`'s home (and rows) by a copy of the world's and open its parts again."""
    vault.close()
    home, database_url = vault.settings.home, vault.settings.database_url
    shutil.rmtree(home)
    shutil.copytree(snapshot.home, home)
    if database_url is not None:
        assert snapshot.reset is not None
        # One round trip and one transaction, as the template's statements are replayed.
        replay([Statement(snapshot.reset, None, many=False)], database_url)
    opened = open_vault(load_settings(home, database_url=database_url), PASSPHRASE)
    # The test holds this very object (the `vault` fixture's): it gets the new parts.
    for field in dataclasses.fields(Vault):
        setattr(vault, field.name, getattr(opened, field.name))
