"""Fresh test vaults copied from one template made once per test session.

Creating a vault runs every migration and writes the keyring with an fsync per secret: about a
second, on each database. The `vault` fixture instead copies a template made once per session
by the same `create_vault`: its home directory (keyring, settings file, object store and, on
SQLite, the database file) is copied into the test's own directory. On PostgreSQL every
statement that creating the template executed is replayed once into a working schema, which
the tests use one after another: after each test its rows are put back to the template's, or,
if the test changed its structure, it is dropped and made again (`WorkingSchema`). Each test
thus gets a vault holding nothing of any other test's, in a fraction of the time.
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
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from keys import KdfParams
from tests.postgres_support import fresh_schema
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
            url = schema.enter_context(fresh_schema(postgres_url, "template"))
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


# Everything a test could change in a schema's structure, as one digest: relations and their
# rights, columns in order, defaults, constraints, indexes, triggers (and whether enabled),
# functions, row-level security. The same digest after a test: only rows can differ.
_STRUCTURE = """
SELECT md5(string_agg(part, '|' ORDER BY part)) FROM (
    SELECT concat_ws(' ', 'r', c.relname, c.relkind, c.relacl, c.relowner, c.relrowsecurity)
        AS part
    FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'a', c.relname, a.attnum, a.attname,
        format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attisdropped,
        pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0
    UNION ALL
    SELECT concat_ws(' ', 'c', conname, pg_get_constraintdef(oid), convalidated)
    FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'i', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    WHERE c.relnamespace = current_schema()::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 't', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = current_schema()::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'f', p.oid::regprocedure, md5(p.prosrc))
    FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'p', p.polname, pg_get_expr(p.polqual, p.polrelid))
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    WHERE c.relnamespace = current_schema()::regnamespace
) parts
"""


class WorkingSchema:
    """The PostgreSQL schema the tests' vaults use, one test after another: made once from the
    template's statements, and put back to the template's rows after each test.

    A test may change rows only: `restore` deletes every row (triggers, the append-only ledger's
    among them, switched off for that transaction) and copies the template's rows back. If the
    structure changed (a trigger dropped, a column added), or the rows cannot be put back, the
    schema is dropped and the next test gets a new one made from the statements again.
    """

    def __init__(self, template: Template, postgres_url: str) -> None:
        assert template.statements is not None and template.database_url is not None
        self._template = template
        self._postgres_url = postgres_url
        self._schema: ExitStack | None = None
        self._engine: Engine | None = None
        self._structure = ""
        self._reset = ""
        self.url = ""

    def acquire(self) -> str:
        """Return the URL of the schema, holding exactly the template's rows."""
        if self._schema is None:
            schema = ExitStack()
            self.url = schema.enter_context(fresh_schema(self._postgres_url))
            self._schema = schema
            assert self._template.statements is not None
            replay(self._template.statements, self.url)
            self._engine = create_engine(self.url, pool_size=1)
            self._structure, self._reset = self._prepare()
        return self.url

    def _prepare(self) -> tuple[str, str]:
        assert self._engine is not None and self._template.database_url is not None
        template = create_engine(self._template.database_url, poolclass=NullPool)
        try:
            with template.connect() as connection:
                source = str(connection.scalar(text("SELECT current_schema()")))
        finally:
            template.dispose()
        with self._engine.connect() as connection:
            structure = str(connection.scalar(text(_STRUCTURE)))
            tables = list(
                connection.scalars(
                    text(
                        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
                        " AND relnamespace = current_schema()::regnamespace ORDER BY relname"
                    )
                )
            )
        quote = self._engine.dialect.identifier_preparer.quote
        reset = ["SET LOCAL session_replication_role = replica", "SET LOCAL lock_timeout = '30s'"]
        # The names come from the catalog, quoted.
        reset += [f"DELETE FROM {quote(name)}" for name in tables]  # noqa: S608
        reset += [
            f"INSERT INTO {quote(name)} SELECT * FROM {quote(source)}.{quote(name)}"  # noqa: S608
            for name in tables
        ]
        return structure, ";\n".join(reset)

    def restore(self) -> None:
        """Put the template's rows back after a test (or drop a schema whose structure moved)."""
        if self._schema is None or self._engine is None:
            return
        try:
            connection = self._engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(_STRUCTURE)
                row = cursor.fetchone()
                if row is not None and row[0] == self._structure:
                    cursor.execute(self._reset)  # one round trip, one transaction
                    connection.commit()
                    return
                connection.rollback()
            finally:
                connection.close()
        except DBAPIError:
            pass
        self.close()

    def close(self) -> None:
        """Drop the schema; the next `acquire` makes a new one."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._schema is not None:
            schema, self._schema = self._schema, None
            schema.close()


_WORKING: dict[str, WorkingSchema] = {}


def working_schema(request: pytest.FixtureRequest) -> WorkingSchema:
    """Return this process's working schema (made on first use, dropped at the session's end)."""
    if "postgres" not in _WORKING:
        made = template(request, "postgres")
        working = WorkingSchema(made, request.getfixturevalue("postgres_url"))
        request.config.add_cleanup(working.close)
        _WORKING["postgres"] = working
    return _WORKING["postgres"]
