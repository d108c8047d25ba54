"""The `vault` fixture: each test gets a vault of its own, though all are copies of one
template (tests/unit/vault/template_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, table, text
from sqlalchemy.exc import DBAPIError

from tests.unit.vault.conftest import PASSPHRASE, principal
from tests.unit.vault.deposit_support import BODY, counts, deposit, fields, objects
from tests.unit.vault.ledger.conftest import allow_tampering
from tests.unit.vault.template_support import ACCOUNTS, replay, template
from vault import ledger
from vault.accounts import add_user, list_users
from vault.cases import create_case, list_cases
from vault.compose import open_vault
from vault.parts import Vault
from vault.settings import load_settings

SEEN: set[Path] = set()


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_finds_a_fresh_vault_whatever_ran_before(
    vault: Vault, tmp_path: Path, turn: int
) -> None:
    # Each turn checks that nothing of the other turn (whichever ran first) is in its vault,
    # then writes: a case, an item, an account and its objects.
    admin = principal(vault, "admin")
    assert list_cases(vault, admin) == []
    with vault.sessions() as session:
        names = sorted(user.name for user in list_users(session))
    assert names == sorted(["admin", *(name for name, _ in ACCOUNTS)])
    assert objects(vault) == []
    assert counts(vault)[:2] == (0, 0)
    # Its own home; on PostgreSQL the schema is shared, one test after another, its rows put
    # back to the template's in between (tests/postgres_support.WorkingSchema).
    assert vault.settings.home == tmp_path / "vault"
    assert vault.settings.home not in SEEN
    SEEN.add(vault.settings.home)

    create_case(vault, admin, f"written in turn {turn}")
    tina_case = create_case(vault, principal(vault, "tina"), f"deposited in turn {turn}")
    deposit(vault, "tina", BODY, fields(tina_case.id))
    with vault.sessions.begin() as session:
        add_user(session, f"turn{turn}", "therapist", vault.clock())
    assert len(list_cases(vault, admin)) == 2 and objects(vault)


def test_a_copy_is_a_vault_that_reopens_with_the_passphrase(vault: Vault) -> None:
    # The copy holds the template's keyring and database, consistent with each other: the
    # ledger verifies and the vault opens again from its files.
    with vault.sessions() as session:
        assert ledger.size(session) > 0
    reopened = open_vault(
        load_settings(vault.settings.home, database_url=vault.settings.database_url), PASSPHRASE
    )
    try:
        with reopened.sessions() as session:
            assert ledger.size(session) == counts(vault)[2]
    finally:
        reopened.close()


@pytest.mark.parametrize("turn", [1, 2])
def test_a_test_that_drops_the_ledger_triggers_leaves_them_to_no_other(
    vault: Vault, turn: int
) -> None:
    # Each turn finds the append-only ledger whole and guarded, then drops its triggers and
    # deletes from it: on PostgreSQL the next test's schema must be rebuilt, not just refilled.
    with vault.sessions() as session:
        size = ledger.size(session)
    assert size > 0
    with pytest.raises(DBAPIError), vault.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries"))
    allow_tampering(vault.engine)
    with vault.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries WHERE seq > 1"))
        connection.execute(text("DELETE FROM users WHERE name = 'theo'"))


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_postgresql_vault_has_the_template_schema_and_rows(
    request: pytest.FixtureRequest, vault: Vault, database_url: str, pg_schema_url: str
) -> None:
    # The schema the vaults use, made by replaying what creating the template executed and put
    # back after every test before this one, has every table, column, index, constraint,
    # trigger, function and row of the template's; so has a fresh replay.
    made = template(request, "postgres")
    assert made.database_url is not None and made.statements is not None
    original = _catalog(made.database_url)
    assert original["triggers"] and original["functions"] and original["rows of users"] == 4
    assert _catalog(database_url) == original
    replay(made.statements, pg_schema_url)
    assert _catalog(pg_schema_url) == original


def _catalog(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
            found: dict[str, object] = {}
            queries = {
                "columns": "SELECT table_name, column_name, data_type, is_nullable,"
                " column_default FROM information_schema.columns WHERE table_schema = :s",
                "indexes": "SELECT tablename, indexname, replace(indexdef, :s, '') FROM"
                " pg_indexes WHERE schemaname = :s",
                "constraints": "SELECT c.conname, pg_get_constraintdef(c.oid) FROM"
                " pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE n.nspname = :s",
                "triggers": "SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON"
                " c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :s AND NOT t.tgisinternal",
                "functions": "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname = :s",
            }
            for name, sql in queries.items():
                found[name] = sorted(
                    tuple(row) for row in connection.execute(text(sql), {"s": schema})
                )
            names = connection.scalars(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            for name in sorted(names):
                count = select(func.count()).select_from(table(name))
                found[f"rows of {name}"] = connection.scalar(count)
            return found
    finally:
        engine.dispose()
