"""Web sign-in: password hashes and TOTP seeds, set-password links, sessions, used forms."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_web_auth"
down_revision = "0011_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_secrets",
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_secrets")),
    )
    op.create_table(
        "password_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_links")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_password_links_secret_sha256")),
    )
    op.create_index(op.f("ix_password_links_account_id"), "password_links", ["account_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_web_sessions_secret_sha256")),
    )
    op.create_index(op.f("ix_web_sessions_account_id"), "web_sessions", ["account_id"])
    op.create_table(
        "web_form_uses",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_web_form_uses")),
    )
    op.create_index(op.f("ix_web_form_uses_session_id"), "web_form_uses", ["session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_web_form_uses_session_id"), "web_form_uses")
    op.drop_table("web_form_uses")
    op.drop_index(op.f("ix_web_sessions_account_id"), "web_sessions")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_password_links_account_id"), "password_links")
    op.drop_table("password_links")
    op.drop_table("account_secrets")
