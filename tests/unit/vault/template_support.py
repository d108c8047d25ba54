"""Fresh test vaults copied from one template made once per test session.

Creating a vault runs every migration and writes the keyring with an fsync per secret: about a
second, on each database. The `vault` fixture instead copies a template made once per session
by the same `create_vault`: its home directory (keyring, settings file, object store and, on
SQLite, the database file) is copied into the test's own directory. On PostgreSQL every
statement that creating the template executed is replayed once into a working schema, which
the tests use one after another: after each test its rows are put back to the template's, or,
if the test changed its structure, it is dropped and made again (`WorkingSchema`,
tests/postgres_support.py). Each test thus gets a vault holding nothing of any other test's,
in a fraction of the time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from keys import KdfParams
from tests.postgres_support import WorkingSchema, fresh_schema
from vault.accounts import add_user
from vault.compose import open_vault
from vault.parts import Vault
from vault.provision import create_vault
from vault.settings import load_settings

# The weakest parameters the keyring accepts: these tests are about the vault, not the KDF.
FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
PASSPHRASE = "correct horse battery staple"
# The accounts every test vault holds besides the custodian `admin`.
ACCOUNTS = (("tina", "therapist"), ("theo", "therapist"), ("lena", "lawyer"))


@dataclass(frozen=True)
class Statement:
    """One statement as the driver received it, replayable as it was."""

    sql: str
    parameters: Any
    many: bool


@dataclass(frozen=True)
class Template:
    """A vault made once: its home, and on PostgreSQL what made its schema."""

    home: Path
    database_url: str | None
    statements: Sequence[Statement] | None


# The session's templates, by database: made on first use, by whichever test package asks.
_TEMPLATES: dict[str, Template] = {}


def template(request: pytest.FixtureRequest, database: str) -> Template:
    """Return the session's template vault on `database` ("sqlite" or "postgres")."""
    if database not in _TEMPLATES:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        home = factory.mktemp("template") / "vault"
        if database == "sqlite":
            _TEMPLATES[database] = make_template(home, None)
        else:
            postgres_url: str = request.getfixturevalue("postgres_url")
            schema = ExitStack()
            url = schema.enter_context(fresh_schema(postgres_url, "template", durable=False))
            request.config.add_cleanup(schema.close)
            _TEMPLATES[database] = make_template(home, url)
    return _TEMPLATES[database]


@contextmanager
def _own_settings() -> Iterator[None]:
    # The developer's own TVAULT_* settings must not leak into the template.
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TVAULT_") and not name.startswith("TVAULT_TEST_"):
                patch.delenv(name)
        yield


def make_template(home: Path, database_url: str | None) -> Template:
    """Create the template vault in `home` (its database at `database_url`, None: SQLite)."""
    recorded: list[Statement] = []

    def record(
        conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if database_url is not None and conn.engine.url == make_url(database_url):
            recorded.append(Statement(sql, parameters, many))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        with _own_settings():
            settings = load_settings(home, database_url=database_url)
            created = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
            with created.sessions.begin() as session:
                for name, role in ACCOUNTS:
                    add_user(session, name, role, created.clock())
            created.close()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return Template(home, database_url, recorded if database_url is not None else None)


def replay(statements: Sequence[Statement], database_url: str) -> None:
    """Execute `statements` into the (empty) database `database_url`, in one transaction."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            for statement in statements:
                if statement.many:
                    cursor.executemany(statement.sql, statement.parameters)
                else:
                    cursor.execute(statement.sql, statement.parameters)
            cursor.close()
            connection.commit()
        finally:
            connection.close()
    finally:
        engine.dispose()


def copy_vault(template: Template, home: Path, database_url: str | None) -> Vault:
    """Open a copy of `template` whose home is `home` and database `database_url`: on SQLite
    the copied file (None), on PostgreSQL a schema already holding the template's rows."""
    shutil.copytree(template.home, home)
    return open_vault(load_settings(home, database_url=database_url), PASSPHRASE)


_WORKING: dict[str, WorkingSchema] = {}


def working_schema(request: pytest.FixtureRequest) -> WorkingSchema:
    """Return this process's working schema (made on first use, dropped at the session's end)."""
    if "postgres" not in _WORKING:
        made = template(request, "postgres")
        assert made.database_url is not None and made.statements is not None
        statements = made.statements
        working = WorkingSchema(
            request.getfixturevalue("postgres_url"),
            made.database_url,
            lambda url: replay(statements, url),
        )
        request.config.add_cleanup(working.close)
        _WORKING["postgres"] = working
    return _WORKING["postgres"]
