"""Idempotency keys of deposits (`vault.db.idempotency_tables`), and the index that finds an
item of the same SHA-256 in a case (duplicates, docs/usage.md)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_idempotency"
down_revision = "0010_item_kek"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("item_id", sa.String(32), nullable=True),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key_hash", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"])
    op.create_index("ix_items_case_sha256", "items", ["case_id", "sha256"])


def downgrade() -> None:
    op.drop_index("ix_items_case_sha256", table_name="items")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
