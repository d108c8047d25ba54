"""The ledger tests' databases: each test gets the tables as `create_all` made them, though on
PostgreSQL all tests of a process share one schema (tests/unit/vault/ledger/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.unit.vault.ledger.conftest import allow_tampering
from vault import ledger
from vault.ledger import actions


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_finds_the_ledger_empty_whatever_ran_before(
    sessions: sessionmaker[Session], turn: int
) -> None:
    # Rows only: on PostgreSQL the schema is shared, its rows put back in between.
    with sessions() as session:
        assert ledger.size(session) == 0
    with sessions.begin() as session:
        ledger.append(session, actor=f"turn-{turn}", action=actions.GRANT)
    with sessions() as session:
        assert ledger.size(session) == 1


@pytest.mark.parametrize("turn", [1, 2])
def test_a_test_that_changes_the_ledger_tables_leaves_them_to_no_other(
    engine: Engine, sessions: sessionmaker[Session], turn: int
) -> None:
    # Each turn finds the tables empty, guarded and as made, whichever turn ran first; then it
    # appends, drops the append-only triggers, deletes and adds a column. On PostgreSQL the
    # next test's schema must be made again, not just emptied.
    with sessions() as session:
        assert ledger.size(session) == 0
    columns = {column["name"] for column in inspect(engine).get_columns("ledger_entries")}
    assert "stray" not in columns
    with sessions.begin() as session:
        ledger.append(session, actor=f"turn-{turn}", action=actions.GRANT)
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries"))

    allow_tampering(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries"))
        connection.execute(text("ALTER TABLE ledger_entries ADD COLUMN stray INTEGER"))
