"""Databases for the ledger tests: a SQLite file (WAL) and a schema on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from tests.postgres_support import WorkingSchema, fresh_schema
from vault import ledger
from vault.ledger import mac
from vault.ledger.entry import build
from vault.ledger.tables import CheckpointRow, LedgerRow, LedgerState

LEDGER_KEY = bytes(range(32))
TABLES = [cast(Table, t.__table__) for t in (LedgerRow, LedgerState, CheckpointRow)]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The pragmas the vault's own engine sets (vault.db.session): WAL and a busy timeout.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def sqlite_engine(path: Path) -> Engine:
    """An engine on a SQLite file with the vault's pragmas."""
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file with the ledger tables."""
    engine = sqlite_engine(tmp_path / "ledger.sqlite")
    LedgerRow.metadata.create_all(engine, tables=TABLES)
    yield engine
    engine.dispose()


def _create_tables(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        LedgerRow.metadata.create_all(engine, tables=TABLES)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def ledger_schema(postgres_url: str) -> Iterator[WorkingSchema]:
    """The process's PostgreSQL schema of the ledger tables, put back after each test to the
    rows `create_all` made (those of a schema made once for that), or made again if a test
    changed its structure (`allow_tampering` drops triggers): tests/postgres_support.py."""
    with fresh_schema(postgres_url, "ledger_source", durable=False) as source:
        _create_tables(source)
        working = WorkingSchema(postgres_url, source, _create_tables, "ledger")
        try:
            yield working
        finally:
            working.close()


@pytest.fixture
def postgres_db(ledger_schema: WorkingSchema) -> Iterator[Engine]:
    """The ledger tables on the test PostgreSQL as `create_all` made them, in a schema of their
    own that no other test has changed."""
    engine = create_engine(ledger_schema.acquire(), pool_size=8)
    try:
        yield engine
    finally:
        engine.dispose()
        ledger_schema.restore()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each ledger test runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_db" if request.param == "sqlite" else "postgres_db"
    result: Engine = request.getfixturevalue(fixture)
    return result


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the test database, with a ledger MAC key bound as the vault binds its own."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        mac.upgrade(session, LEDGER_KEY)  # the state rows' first MACs, as a vault's first open
    mac.bind(factory, LEDGER_KEY)
    return factory


def allow_tampering(engine: Engine) -> None:
    """Drop the append-only triggers, as someone with the database owner's rights could."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("DROP TRIGGER IF EXISTS ledger_entries_no_change ON ledger_entries")
            )
            connection.execute(
                text("DROP TRIGGER IF EXISTS ledger_entries_mac_once ON ledger_entries")
            )
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS ledger_entries_mac_once"))
            connection.execute(text("DROP TRIGGER IF EXISTS ledger_entries_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS ledger_entries_no_delete"))


def rewrite_from(
    engine: Engine,
    sessions: sessionmaker[Session],
    start: int,
    change: Callable[[dict[str, Any]], None],
) -> None:
    """Edit entry `start`'s details with `change` and recompute every later hash and the head,
    in SQL, as a careful forger without the keys would (the triggers dropped first)."""
    allow_tampering(engine)
    with sessions.begin() as session:
        old = list(ledger.entries(session, start))
        prev = old[0].prev_hash
        for entry in old:
            details = dict(entry.details)
            if entry.seq == start:
                change(details)
            new = build(
                seq=entry.seq,
                time=entry.time,
                actor=entry.actor,
                action=entry.action,
                item_id=entry.item_id,
                case_id=entry.case_id,
                details=details,
                sealed=ledger.sealed_details(session, entry.seq),
                prev_hash=prev,
            )
            prev = new.entry_hash
            session.execute(
                text(
                    "UPDATE ledger_entries SET entry = :e, entry_hash = :h, leaf_hash = :l "
                    "WHERE seq = :s"
                ),
                {"e": new.canonical, "h": new.entry_hash, "l": new.leaf_hash, "s": entry.seq},
            )
        session.execute(text("UPDATE ledger_state SET hash = :h WHERE name = 'head'"), {"h": prev})
