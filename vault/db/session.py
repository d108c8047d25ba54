"""Engines, sessions and migrations of the metadata database (SQLite in WAL mode, PostgreSQL)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from vault.errors import Unavailable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PSYCOPG = ("psycopg", "psycopg2")  # the PostgreSQL drivers whose dialects take use_native_hstore


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; busy_timeout waits for the write lock instead
    # of failing concurrent deposits; secure_delete zeroes freed pages so a shredded row's bytes
    # do not linger in the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for `url`; SQLite connections get WAL, foreign keys and a busy timeout.

    The SQLite file is made (or kept) private, mode 0600: SQLite gives its WAL and shared-memory
    files the mode of the database, so they follow.
    """
    options: dict[str, Any] = {}
    if make_url(url).get_driver_name() in _PSYCOPG:
        # No column is an hstore: without this, each engine's first connection asks the server
        # for the hstore type's OID (a round trip; half of SQLAlchemy's 2 ms of CPU setting up
        # a PostgreSQL engine, at every open of a vault).
        options["use_native_hstore"] = False
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"), **options)
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:" and Path(database).parent.is_dir():
            _private_file(Path(database))
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def purge_freed_pages(engine: Engine) -> bool:
    """Move every committed page into the SQLite file and truncate its write-ahead log; return
    False if a reader kept some frames in the log (busy). True on other databases.

    Crypto-shredding (vault.shred): `secure_delete` zeroes the key's row in the page that held
    it, but until a checkpoint the log still holds earlier images of that page, and the log
    file keeps them until it is overwritten. TRUNCATE copies the pages back and cuts the log
    to zero bytes. PostgreSQL keeps dead rows until VACUUM and old pages in its WAL archive:
    docs/keys.md says why the item's key-encryption key makes those copies useless.
    """
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        busy, _frames, _copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return not busy


def _private_file(path: Path) -> None:
    # Created 0600 before SQLite opens it (SQLite would use 0644 less the umask); an existing
    # file of an older vault is tightened.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if each.exists() and each.stat().st_mode & 0o077:
            each.chmod(0o600)


def connect(engine: Engine) -> Connection:
    """Return a new connection of `engine` (the caller closes it). Raises `Unavailable`, in one
    line naming the database (password hidden) and the reason, if it cannot be reached."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise Unavailable(
            f"cannot reach the database {where}: {reason}; check TVAULT_DATABASE_URL and that "
            "the database server is running"
        ) from None


def check_reachable(engine: Engine) -> None:
    """Open and close one connection of `engine`. Raises `Unavailable` as `connect` does."""
    connect(engine).close()


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory of `engine` (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def migrate(bind: Engine | Connection, revision: str = "heads") -> None:
    """Upgrade the database behind `bind` (an engine, or a connection outside a transaction) to
    `revision` (every head by default), in one transaction.

    Raises `alembic.util.CommandError` or a SQLAlchemy error if a migration fails.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            migrate(connection, revision)
        return
    with bind.begin():
        # A database already at every head needs nothing: the usual case of every start, told
        # without running the environment script and importing each migration again.
        if revision == "heads" and _stored_heads(bind) == set(_scripts().get_heads()):
            return
        config = _config()
        config.attributes["connection"] = bind
        command.upgrade(config, revision)


# Alembic's table of the revisions a database is at (its default name; env.py keeps it), and
# whether it exists, asked without an error (PostgreSQL would abort the transaction and log one).
_VERSIONS = "SELECT version_num FROM alembic_version"
_HAS_VERSIONS = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='alembic_version'",
    "postgresql": "SELECT count(to_regclass('alembic_version'))",
}


def _stored_heads(connection: Connection) -> set[str]:
    # Two plain queries (one on SQLite's catalog) where alembic's MigrationContext reflects the
    # table through an inspector first: 2.7 ms of CPU per open on PostgreSQL, 0.6 ms this way.
    # `to_regclass` and the unqualified SELECT both follow the search_path, as alembic does.
    has_versions = _HAS_VERSIONS.get(connection.dialect.name)
    if has_versions is None:
        return set(MigrationContext.configure(connection).get_current_heads())
    if not connection.exec_driver_sql(has_versions).scalar():
        return set()
    return set(connection.exec_driver_sql(_VERSIONS).scalars())


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    # The migrations shipped with this code: read once per process.
    return ScriptDirectory.from_config(_config())
