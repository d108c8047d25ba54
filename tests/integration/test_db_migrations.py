"""Alembic migrations shipped in the package: the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from vault.db import Base, make_engine, migrate
from vault.db.session import MIGRATIONS

CORE = {"users", "cases", "case_grants", "items", "item_keys"}


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'vault.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    schema = f"migr_{secrets.token_hex(6)}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{postgres_url}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    result: Engine = request.getfixturevalue(name)
    return result


def test_migrations_create_the_core_tables_and_run_twice(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)  # a second run (every `serve`) changes nothing
    tables = set(inspect(engine).get_table_names())
    assert tables >= CORE | {"alembic_version"}
    with engine.connect() as connection:
        heads = {
            row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))
        }
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert heads == set(ScriptDirectory.from_config(config).get_heads())


def test_the_schema_matches_the_models(engine: Engine) -> None:
    migrate(engine)
    inspector = inspect(engine)
    for name in CORE:
        table = Base.metadata.tables[name]
        assert {c["name"] for c in inspector.get_columns(name)} == set(table.columns.keys())


def test_sqlite_runs_in_wal_mode(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    migrate(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not CORE & set(inspect(engine).get_table_names())
    migrate(engine)
    assert set(inspect(engine).get_table_names()) >= CORE
