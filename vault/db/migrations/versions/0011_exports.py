"""Exports to commissions: commission_recipients, exports (`vault.db.export_tables`)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_exports"
down_revision = "0013_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commission_recipients",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("key_type", sa.String(16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_name"], ["users.name"], name=op.f("fk_commission_recipients_user_name_users")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_commission_recipients")),
    )
    op.create_index(
        op.f("ix_commission_recipients_user_name"), "commission_recipients", ["user_name"]
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("commission", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column("has_query", sa.Boolean(), nullable=False),
        sa.Column("sealed_request", sa.LargeBinary(), nullable=False),
        sa.Column("approval_id", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("object_name", sa.String(128), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=True),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_exports_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["commission"], ["users.name"], name=op.f("fk_exports_commission_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    op.create_index(op.f("ix_exports_case_id"), "exports", ["case_id"])
    op.create_index(op.f("ix_exports_commission"), "exports", ["commission"])
    op.create_index("ix_exports_state", "exports", ["state", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_exports_state", table_name="exports")
    op.drop_index(op.f("ix_exports_commission"), "exports")
    op.drop_index(op.f("ix_exports_case_id"), "exports")
    op.drop_table("exports")
    op.drop_index(op.f("ix_commission_recipients_user_name"), "commission_recipients")
    op.drop_table("commission_recipients")
