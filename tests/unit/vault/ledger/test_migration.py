"""Revision 0002_ledger: tables, head rows and append-only triggers; downgrade and upgrade again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from vault import ledger
from vault.db.session import MIGRATIONS, make_engine, make_sessions, migrate
from vault.ledger import actions


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
