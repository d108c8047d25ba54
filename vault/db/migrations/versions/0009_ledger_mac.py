"""Ledger MACs: a keyed MAC on every entry and on both rows of `ledger_state`.

The columns start empty: the MACs need the ledger key, which lives in the keyring, so the first
open of the vault with its passphrase computes them once (`vault.ledger.mac.ensure_key`). The
append-only triggers are replaced by ones that also allow setting a missing MAC, nothing else.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_ledger_mac"
down_revision = "0007_credentials"
branch_labels = None
depends_on = None

# The same DDL as vault.ledger.tables, repeated because a migration must not change with the code.
COLUMNS = "seq, time, actor, action, item_id, case_id, entry, entry_hash, leaf_hash, sealed_details"
ABORT = "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END"
SQLITE_OLD = (f"CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries {ABORT}",)
SQLITE_NEW = (
    f"CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OF {COLUMNS} ON ledger_entries {ABORT}",
    "CREATE TRIGGER ledger_entries_mac_once BEFORE UPDATE OF mac ON ledger_entries "
    f"WHEN OLD.mac IS NOT NULL {ABORT}",
)
POSTGRES_OLD = (
    "CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
)
POSTGRES_NEW = (
    f"CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OF {COLUMNS} OR DELETE "
    "ON ledger_entries FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
    "CREATE TRIGGER ledger_entries_mac_once BEFORE UPDATE OF mac ON ledger_entries "
    "FOR EACH ROW WHEN (OLD.mac IS NOT NULL) EXECUTE FUNCTION ledger_entries_append_only()",
)


def _postgres() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("mac", sa.LargeBinary(32), nullable=True))
    op.add_column("ledger_state", sa.Column("mac", sa.LargeBinary(32), nullable=True))
    if _postgres():
        op.execute("DROP TRIGGER ledger_entries_no_change ON ledger_entries")
        statements = POSTGRES_NEW
    else:
        op.execute("DROP TRIGGER ledger_entries_no_update")
        statements = SQLITE_NEW
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if _postgres():
        op.execute("DROP TRIGGER ledger_entries_mac_once ON ledger_entries")
        op.execute("DROP TRIGGER ledger_entries_no_change ON ledger_entries")
        statements = POSTGRES_OLD
    else:
        op.execute("DROP TRIGGER ledger_entries_mac_once")
        op.execute("DROP TRIGGER ledger_entries_no_update")
        statements = SQLITE_OLD
    # SQLite 3.35+ drops a column in place (no trigger names it any more).
    op.execute("ALTER TABLE ledger_state DROP COLUMN mac")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN mac")
    for statement in statements:
        op.execute(statement)
