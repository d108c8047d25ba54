"""Two-person rule and shared key state: approvals, approval_votes, key_state.

`key_state` holds the master key version new item keys are wrapped under, seen by every
process; its row is written by the first process that opens the vault (it knows the keyring).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_approvals"
down_revision = "0009_ledger_mac"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("sealed_note", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("quorum", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index("ix_approvals_state", "approvals", ["state", "requested_at"])
    op.create_table(
        "approval_votes",
        sa.Column("approval_id", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("vote", sa.String(16), nullable=False),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed_reason", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approvals.id"],
            name=op.f("fk_approval_votes_approval_id_approvals"),
        ),
        sa.PrimaryKeyConstraint("approval_id", "actor", name=op.f("pk_approval_votes")),
    )
    op.create_table(
        "key_state",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_state")),
    )


def downgrade() -> None:
    op.drop_table("key_state")
    op.drop_table("approval_votes")
    op.drop_index("ix_approvals_state", table_name="approvals")
    op.drop_table("approvals")
