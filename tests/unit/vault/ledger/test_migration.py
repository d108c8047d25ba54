"""Revisions 0002_ledger and 0009_ledger_mac: tables, head rows, append-only triggers, MACs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from tests.unit.vault.ledger.conftest import LEDGER_KEY
from vault import ledger
from vault.db.session import MIGRATIONS, make_engine, make_sessions, migrate
from vault.ledger import actions, mac
from vault.ledger.entry import build


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'vault.sqlite'}")
        yield engine
        engine.dispose()
        return
    url: str = request.getfixturevalue("pg_schema_url")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_upgrade_downgrade_upgrade(fresh: Engine) -> None:
    migrate(fresh)
    tables = set(inspect(fresh).get_table_names())
    assert {"ledger_entries", "ledger_state", "ledger_checkpoints"} <= tables
    sessions = make_sessions(fresh)
    mac.bind(sessions, LEDGER_KEY)
    with sessions.begin() as session:
        first = ledger.append(session, actor="admin", action=actions.GRANT)
    assert first.seq == 0
    with sessions() as session, pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM ledger_entries"))
    downgrade(fresh, "0001_core")
    assert not {"ledger_entries", "ledger_state"} & set(inspect(fresh).get_table_names())
    migrate(fresh)
    with sessions.begin() as session:
        assert ledger.append(session, actor="admin", action=actions.GRANT).seq == 0


class Secrets(dict[str, bytes]):
    """A keyring's named secrets, as `mac.ensure_key` uses them."""

    def has_secret(self, name: str) -> bool:
        return name in self

    def secret(self, name: str) -> bytes:
        return self[name]

    def set_secret(self, name: str, value: bytes) -> None:
        self[name] = value


def old_entries(engine: Engine, count: int) -> list[bytes]:
    """Write `count` entries as the code before MACs did (no MAC column); return their hashes."""
    from datetime import UTC, datetime

    hashes, prev = [], bytes(32)
    with engine.begin() as connection:
        for seq in range(count):
            entry = build(
                seq=seq,
                time=datetime.now(UTC),
                actor="admin",
                action=actions.GRANT,
                item_id=None,
                case_id=None,
                details={},
                sealed=None,
                prev_hash=prev,
            )
            connection.execute(
                text(
                    "INSERT INTO ledger_entries (seq, time, actor, action, entry, entry_hash, "
                    "leaf_hash) VALUES (:s, :t, 'admin', :a, :e, :h, :l)"
                ),
                {
                    "s": seq,
                    "t": entry.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "a": actions.GRANT,
                    "e": entry.canonical,
                    "h": entry.entry_hash,
                    "l": entry.leaf_hash,
                },
            )
            prev = entry.entry_hash
            hashes.append(prev)
        connection.execute(
            text("UPDATE ledger_state SET size = :n, hash = :h WHERE name = 'head'"),
            {"n": count, "h": prev},
        )
    return hashes


def test_an_old_ledger_gets_its_macs_once_on_first_open(fresh: Engine) -> None:
    migrate(fresh, "0006_jobs_claim_order")
    hashes = old_entries(fresh, 3)
    migrate(fresh)
    with fresh.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM ledger_entries WHERE mac IS NULL")) == 3
    keyring, sessions = Secrets(), make_sessions(fresh)
    key = mac.ensure_key(keyring, sessions)
    assert keyring[mac.SECRET] == key
    with fresh.connect() as connection:
        stored = [bytes(m) for (m,) in connection.execute(text("SELECT mac FROM ledger_entries"))]
        head = connection.execute(
            text("SELECT size, hash, mac FROM ledger_state WHERE name = 'head'")
        ).one()
    assert stored == [mac.entry_mac(key, h) for h in hashes]
    assert bytes(head.mac) == mac.head_mac(key, 3, hashes[-1])
    # Appends go on under the same key; the key is never made again.
    with sessions.begin() as session:
        assert ledger.append(session, actor="admin", action=actions.GRANT).seq == 3
    assert mac.ensure_key(keyring, make_sessions(fresh)) == key
    # The triggers let a missing MAC be set, and nothing else.
    for statement in (
        "UPDATE ledger_entries SET mac = NULL WHERE seq = 0",
        "UPDATE ledger_entries SET actor = 'x' WHERE seq = 0",
    ):
        with fresh.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
