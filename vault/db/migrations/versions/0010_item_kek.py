"""Item keys under per-item KEKs: the table of KEK epochs (`vault.db.key_tables`).

Existing `item_keys` rows keep their master-wrapped value (`tvk1`) and still open; the first
crypto-shredding after this revision gives each of them a KEK (docs/keys.md, "Shredding").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_item_kek"
down_revision = "0008_approvals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kek_epochs",
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_kek_epochs")),
    )
    op.create_index(op.f("ix_kek_epochs_state"), "kek_epochs", ["state"])


def downgrade() -> None:
    # `tvk2` item keys stay readable only by code that knows them; a downgrade keeps the rows'
    # values and drops only the epoch bookkeeping.
    op.drop_index(op.f("ix_kek_epochs_state"), "kek_epochs")
    op.drop_table("kek_epochs")
