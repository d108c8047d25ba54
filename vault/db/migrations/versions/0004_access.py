"""Access and consent tables: consent_records, legal_holds, item_identities, redacted_renditions."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_access"
down_revision = "0003_jobs"
branch_labels = None
depends_on = None


def _item_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["item_id"], ["items.id"], name=op.f(f"fk_{table}_item_id_items")
    )


def upgrade() -> None:
    op.create_table(
        "consent_records",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed_form", sa.LargeBinary(), nullable=True),
        _item_fk("consent_records"),
        sa.PrimaryKeyConstraint("item_id", "version", name=op.f("pk_consent_records")),
    )
    op.create_table(
        "legal_holds",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("set_by", sa.String(128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        _item_fk("legal_holds"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_legal_holds")),
    )
    op.create_table(
        "item_identities",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        _item_fk("item_identities"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_identities")),
    )
    op.create_table(
        "redacted_renditions",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("object_name", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        _item_fk("redacted_renditions"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_redacted_renditions")),
        sa.UniqueConstraint("object_name", name=op.f("uq_redacted_renditions_object_name")),
    )


def downgrade() -> None:
    op.drop_table("redacted_renditions")
    op.drop_table("item_identities")
    op.drop_table("legal_holds")
    op.drop_table("consent_records")
