"""Credentials: issued tokens, token-signing keys, OIDC principals seen; account generations.

`users.generation` starts at 1 and grows on every role change and every disabling: a token names
the generation it was issued for, so such a change cuts off every older token at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_credentials"
down_revision = "0006_jobs_claim_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite supports it with a default); a batch copy of `users` would
    # have to rebuild every table whose foreign keys name it.
    op.add_column(
        "users",
        sa.Column("generation", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )
    op.create_table(
        "access_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(128), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_access_tokens")),
    )
    op.create_index(op.f("ix_access_tokens_account_id"), "access_tokens", ["account_id"])
    op.create_table(
        "token_keys",
        sa.Column("kid", sa.String(32), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drops_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_token_keys")),
    )
    op.create_table(
        "oidc_principals",
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "account_id", name=op.f("pk_oidc_principals")),
    )


def downgrade() -> None:
    op.drop_table("oidc_principals")
    op.drop_table("token_keys")
    op.drop_index(op.f("ix_access_tokens_account_id"), table_name="access_tokens")
    op.drop_table("access_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("generation")
