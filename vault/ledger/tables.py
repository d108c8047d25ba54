"""Tables of the custody ledger (revision `0002_ledger`): entries, the head row, checkpoints."""

from __future__ import annotations

import hashlib
from typing import Any, Final

from sqlalchemy import BigInteger, Index, LargeBinary, String, Text, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base

# The chain starts from 32 zero bytes, the conventional "no previous entry".
GENESIS: Final = bytes(32)
# RFC 9162 2.1.1: the hash of an empty tree is the hash of the empty string.
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
# Names of the rows of `ledger_state`.
HEAD: Final = "head"
CHECKPOINT: Final = "checkpoint"


class LedgerRow(Base):
    """One ledger entry: its canonical JSON (the Merkle leaf) and columns copied out of it.

    `entry` is authoritative; `seq`, `time`, `actor`, `action`, `item_id` and `case_id` are copies
    for queries, `entry_hash` and `leaf_hash` caches that `tvault verify` recomputes.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_item_id", "item_id"),
        Index("ix_ledger_entries_case_id", "case_id"),
        Index("ix_ledger_entries_action", "action"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(64))
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_details: Mapped[bytes | None] = mapped_column(LargeBinary)
    # HMAC under the ledger key of `entry_hash` (`vault.ledger.mac`); NULL only in a vault made
    # before MACs, until its first open with the passphrase (revision `0009_ledger_mac`).
    mac: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class LedgerState(Base):
    """Two rows that serialise writers: `head` (size, last entry hash), `checkpoint` (size, root).

    Updating a row first takes its lock: a row lock held to commit on PostgreSQL, the database's
    single write lock on SQLite. Reading the head after that update is therefore race-free on
    both, with no dialect-specific code.
    """

    __tablename__ = "ledger_state"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # HMAC under the ledger key of what the row says (`vault.ledger.mac`).
    mac: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class CheckpointRow(Base):
    """A signed checkpoint: the C2SP signed note as issued, and where the store keeps a copy."""

    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    time: Mapped[str] = mapped_column(String(32))
    object_name: Mapped[str] = mapped_column(String(128))


def _initial_state(target: Any, connection: Connection, **_kw: Any) -> None:
    # `create_all` (tests, tools) gets the same two rows the migration inserts.
    connection.execute(
        target.insert(),
        [
            {"name": HEAD, "size": 0, "hash": GENESIS},
            {"name": CHECKPOINT, "size": 0, "hash": EMPTY_ROOT},
        ],
    )


event.listen(LedgerState.__table__, "after_create", _initial_state)

# Append-only in the database itself: UPDATE and DELETE of an entry are refused by triggers, so
# no bug and no stray SQL can rewrite custody history. The one change allowed is setting a MAC
# that is missing (a vault upgraded to MACs, `vault.ledger.mac.upgrade`). (Someone with the
# database's owner rights can drop the triggers; the chain, the MACs under a key the database
# never holds, and the signed checkpoints are what catch them.)
ENTRY_COLUMNS: Final = (
    "seq, time, actor, action, item_id, case_id, entry, entry_hash, leaf_hash, sealed_details"
)
SQLITE_APPEND_ONLY: Final = (
    f"CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OF {ENTRY_COLUMNS} ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END",
    "CREATE TRIGGER ledger_entries_mac_once BEFORE UPDATE OF mac ON ledger_entries "
    "WHEN OLD.mac IS NOT NULL BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END",
    "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END",
)
POSTGRES_APPEND_ONLY: Final = (
    "CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'ledger entries are append-only'; END $$",
    f"CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OF {ENTRY_COLUMNS} OR DELETE "
    "ON ledger_entries FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
    "CREATE TRIGGER ledger_entries_mac_once BEFORE UPDATE OF mac ON ledger_entries "
    "FOR EACH ROW WHEN (OLD.mac IS NOT NULL) EXECUTE FUNCTION ledger_entries_append_only()",
    "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()",
)


def _append_only(_target: Any, connection: Connection, **_kw: Any) -> None:
    statements = {"sqlite": SQLITE_APPEND_ONLY, "postgresql": POSTGRES_APPEND_ONLY}
    for statement in statements.get(connection.dialect.name, ()):
        connection.execute(text(statement))


event.listen(LedgerRow.__table__, "after_create", _append_only)
