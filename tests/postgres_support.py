"""PostgreSQL schemas for tests: fresh ones, dropped afterwards, and working schemas that the
tests of one process use one after another, put back to their first rows in between."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool


@contextmanager
def fresh_schema(
    postgres_url: str, prefix: str = "vault", *, durable: bool = True
) -> Iterator[str]:
    """Create an empty schema; yield a URL whose connections use it; drop it afterwards.

    `durable=False` has the URL's connections commit without waiting for the WAL to reach the
    disk (`synchronous_commit=off`): what they commit is just as visible and just as atomic,
    and is lost only if the PostgreSQL server itself crashes, which no unit test does. A commit
    then costs about 0.5 ms instead of an fsync (3 ms on the test machine)."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(postgres_url, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    options = f"-csearch_path={schema}" + ("" if durable else " -csynchronous_commit=off")
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options={quote(options)}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# What a working schema's structure is, read where PostgreSQL keeps it: each catalog row of its
# relations (tables, indexes), columns, defaults, indexes, triggers, constraints, row-level
# security policies, rules, functions and types, with the transaction that last wrote it
# (`xmin`), and every object that belongs to the schema (`pg_depend`: a table, function or type
# created in it adds a row there). Any DDL writes a new version of a catalog row (new `xmin`),
# adds or deletes one; rows of tables are never in the catalog. Equal before and after a test:
# only rows can differ. Every part looks the objects up by their ids, not by schema: the
# catalogs of a test database keep a dead row of every schema tests ever made and dropped (the
# test server runs without autovacuum), and a search by schema reads them all (35 ms a test on
# the shared test server, against 5 ms).
# A trigger's version is its state and definition rather than its row's `xmin`:
# a test that drops a trigger (the ledger's tampering tests) leaves a schema that
# `WorkingSchema.restore` mends by creating it again (`CREATE OR REPLACE TRIGGER`), which
# gives it a new row, equal in all that matters.
_PARTS = (  # tag, key, version, catalog, which rows
    ("n", "oid::text", "xmin", "pg_namespace", "oid = {ns}"),
    ("d", "classid || ':' || objid || ':' || objsubid", "xmin", "pg_depend",
     "refclassid = 'pg_namespace'::regclass AND refobjid = {ns} AND refobjsubid = 0"),
    ("c", "oid::text", "xmin", "pg_class", "oid = ANY({rels})"),
    ("a", "attrelid || ':' || attnum", "xmin", "pg_attribute", "attrelid = ANY({rels})"),
    ("e", "oid::text", "xmin", "pg_attrdef", "adrelid = ANY({rels})"),
    ("i", "indexrelid::text", "xmin", "pg_index", "indrelid = ANY({rels})"),
    ("t", "tgrelid || ':' || tgname", "tgenabled::text || ':' || md5(pg_get_triggerdef(oid))",
     "pg_trigger", "tgrelid = ANY({rels})"),
    ("k", "oid::text", "xmin", "pg_constraint", "conrelid = ANY({rels})"),
    ("p", "oid::text", "xmin", "pg_policy", "polrelid = ANY({rels})"),
    ("r", "oid::text", "xmin", "pg_rewrite", "ev_class = ANY({rels})"),
    ("s", "seqrelid::text", "xmin", "pg_sequence", "seqrelid = ANY({rels})"),
    ("f", "oid::text", "xmin", "pg_proc", "oid = ANY({procs})"),
    ("y", "oid::text", "xmin", "pg_type", "oid = ANY({types})"),
    ("m", "oid::text", "xmin", "pg_enum", "enumtypid = ANY({types})"),
)  # fmt: skip


def _structure_query(
    namespace: int, relations: list[int], procs: list[int], types: list[int]
) -> str:
    def ids(values: list[int]) -> str:
        return "'{" + ",".join(str(int(value)) for value in values) + "}'::oid[]"

    where = {"ns": str(int(namespace)), "rels": ids(relations), "procs": ids(procs)}
    where["types"] = ids(types)
    parts = " UNION ALL ".join(
        f"SELECT '{tag}' || {key} || '@' || {version} AS part FROM pg_catalog.{catalog}"  # noqa: S608
        f" WHERE {condition.format(**where)}"
        for tag, key, version, catalog, condition in _PARTS
    )
    return f"SELECT md5(string_agg(part, ' ' ORDER BY part)) FROM ({parts}) parts"  # noqa: S608


class WorkingSchema:
    """A PostgreSQL schema that the tests of one process use one after another: made once by
    `build`, and after each test put back to the rows of the schema at `source_url`.

    A test may change rows only: `restore` deletes every row (triggers, the append-only ledger's
    among them, switched off for that transaction) and copies the source's rows back. A
    trigger the test dropped is created again first. If the structure changed otherwise (a
    column added, a function replaced), or the rows cannot be put back, the schema is dropped
    and the next test gets a new one made by `build` again (a third of a second).
    """

    def __init__(
        self,
        postgres_url: str,
        source_url: str,
        build: Callable[[str], None],
        prefix: str = "vault",
    ) -> None:
        self._postgres_url = postgres_url
        self._prefix = prefix
        self._source_url = source_url
        self._build = build
        self._schema: ExitStack | None = None
        self._engine: Engine | None = None
        self._restore = ""
        self._mend = ""
        self._structure = ""
        self.url = ""

    def acquire(self) -> str:
        """Return the URL of the schema, holding exactly the source's rows."""
        if self._schema is None:
            schema = ExitStack()
            self.url = schema.enter_context(
                fresh_schema(self._postgres_url, self._prefix, durable=False)
            )
            self._schema = schema
            self._build(self.url)
            self._engine = create_engine(self.url, pool_size=1)
            self._prepare()
        return self.url

    def _prepare(self) -> None:
        assert self._engine is not None
        source = create_engine(self._source_url, poolclass=NullPool)
        try:
            with source.connect() as connection:
                source_schema = str(connection.scalar(text("SELECT current_schema()")))
        finally:
            source.dispose()
        with self._engine.connect() as connection:
            namespace = int(connection.scalar(text("SELECT current_schema()::regnamespace::oid")))
            relations = list(
                connection.execute(
                    text("SELECT oid, relname, relkind FROM pg_class WHERE relnamespace = :ns"),
                    {"ns": namespace},
                )
            )
            procs = list(
                connection.scalars(
                    text("SELECT oid FROM pg_proc WHERE pronamespace = :ns"), {"ns": namespace}
                )
            )
            types = list(
                connection.scalars(
                    text("SELECT oid FROM pg_type WHERE typnamespace = :ns"), {"ns": namespace}
                )
            )
            relation_ids = [oid for oid, *_ in relations]
            structure = _structure_query(namespace, relation_ids, procs, types)
            self._structure = str(connection.scalar(text(structure)))
            triggers = list(
                connection.scalars(
                    text(
                        "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
                        " WHERE tgrelid = ANY(:rels) AND NOT tgisinternal ORDER BY oid"
                    ),
                    {"rels": relation_ids},
                )
            )
        tables = sorted(name for _, name, kind in relations if kind in ("r", "p"))
        quote_name = self._engine.dialect.identifier_preparer.quote
        # The structure first: `restore` commits only if it is the same.
        restore = [structure, "SET LOCAL session_replication_role = replica"]
        restore += ["SET LOCAL lock_timeout = '30s'"]
        # The names come from the catalog, quoted.
        restore += [f"DELETE FROM {quote_name(name)}" for name in tables]  # noqa: S608
        restore += [
            f"INSERT INTO {quote_name(name)}"  # noqa: S608
            f" SELECT * FROM {quote_name(source_schema)}.{quote_name(name)}"
            for name in tables
        ]
        self._restore = ";\n".join(restore)
        plain = "CREATE TRIGGER "
        assert all(made.startswith(plain) for made in triggers), triggers
        self._mend = ";\n".join(
            ["SET LOCAL lock_timeout = '30s'"]
            + [f"CREATE OR REPLACE TRIGGER {made[len(plain) :]}" for made in triggers]
        )

    def restore(self) -> None:
        """Put the source's rows back after a test (or drop a schema whose structure moved)."""
        if self._schema is None or self._engine is None:
            return
        try:
            if self._put_back(mend=False) or self._put_back(mend=True):
                return
        except DBAPIError:
            pass
        self.close()

    def _put_back(self, *, mend: bool) -> bool:
        # One round trip, one transaction: the structure's digest is the first result; it
        # commits only if the digest is the source's. With `mend`, the triggers are created
        # again first (a second round trip, only after a test that dropped one).
        assert self._engine is not None
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            if mend:
                cursor.execute(self._mend)
            cursor.execute(self._restore)
            row = cursor.fetchone()
            if row is not None and row[0] == self._structure:
                connection.commit()
                return True
            connection.rollback()
            return False
        finally:
            connection.close()

    def close(self) -> None:
        """Drop the schema; the next `acquire` makes a new one."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._schema is not None:
            schema, self._schema = self._schema, None
            schema.close()
