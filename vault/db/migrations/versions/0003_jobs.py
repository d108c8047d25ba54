"""Job queue tables: jobs (durable stage jobs with leases) and item_texts (sealed text links)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_jobs"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_jobs_item_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("item_id", "kind", name="uq_jobs_item_id_kind"),
    )
    op.create_index("ix_jobs_item_id", "jobs", ["item_id"])
    op.create_index("ix_jobs_claim", "jobs", ["state", "run_after"])
    op.create_table(
        "item_texts",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("object_name", sa.String(128), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("chars", sa.BigInteger(), nullable=False),
        sa.Column("sealed_meta", sa.LargeBinary(), nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_texts_item_id_items")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_texts")),
        sa.UniqueConstraint("object_name", name=op.f("uq_item_texts_object_name")),
    )


def downgrade() -> None:
    op.drop_table("item_texts")
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.drop_index("ix_jobs_item_id", table_name="jobs")
    op.drop_table("jobs")
