"""Signed deposits and fixity: depositor_keys, item_signatures, item_ciphertexts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_signatures"
down_revision = "0004_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "depositor_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_name"], ["users.name"], name=op.f("fk_depositor_keys_user_name_users")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_depositor_keys")),
    )
    op.create_index(op.f("ix_depositor_keys_user_name"), "depositor_keys", ["user_name"])
    op.create_table(
        "item_signatures",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("signer", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("statement_sha256", sa.String(64), nullable=False),
        sa.Column("sealed_statement", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_signatures_item_id_items")
        ),
        sa.PrimaryKeyConstraint("item_id", "number", name=op.f("pk_item_signatures")),
    )
    op.create_table(
        "item_ciphertexts",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_ciphertexts_item_id_items")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_ciphertexts")),
    )


def downgrade() -> None:
    op.drop_table("item_ciphertexts")
    op.drop_table("item_signatures")
    op.drop_index(op.f("ix_depositor_keys_user_name"), "depositor_keys")
    op.drop_table("depositor_keys")
