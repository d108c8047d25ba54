"""Custody ledger tables: ledger_entries, ledger_state (head and checkpoint rows), checkpoints."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002_ledger"
down_revision = "0001_core"
branch_labels = None
depends_on = None


SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END",
    "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END",
)
POSTGRES_APPEND_ONLY = (
    "CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'ledger entries are append-only'; END $$",
    "CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
    "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("sealed_details", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_entries")),
    )
    op.create_index("ix_ledger_entries_item_id", "ledger_entries", ["item_id"])
    op.create_index("ix_ledger_entries_case_id", "ledger_entries", ["case_id"])
    op.create_index("ix_ledger_entries_action", "ledger_entries", ["action"])
    state = op.create_table(
        "ledger_state",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ledger_state")),
    )
    # The head starts at the genesis hash (32 zero bytes); the checkpoint row at the RFC 9162
    # root of the empty tree, SHA-256 of the empty string.
    op.bulk_insert(
        state,
        [
            {"name": "head", "size": 0, "hash": bytes(32)},
            {"name": "checkpoint", "size": 0, "hash": hashlib.sha256(b"").digest()},
        ],
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("object_name", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_ledger_checkpoints")),
    )

    # Append-only: triggers refuse UPDATE and DELETE of entries (the same DDL as
    # vault.ledger.tables, repeated here because a migration must not change with the code).
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_APPEND_ONLY:
            op.execute(statement)
    else:
        for statement in SQLITE_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_entries_no_truncate ON ledger_entries")
        op.execute("DROP TRIGGER ledger_entries_no_change ON ledger_entries")
        op.execute("DROP FUNCTION ledger_entries_append_only()")
    else:
        op.execute("DROP TRIGGER ledger_entries_no_update")
        op.execute("DROP TRIGGER ledger_entries_no_delete")
    op.drop_table("ledger_checkpoints")
    op.drop_table("ledger_state")
    op.drop_index("ix_ledger_entries_action", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_case_id", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_item_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
