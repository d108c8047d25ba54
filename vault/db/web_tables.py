"""Tables of web sign-in (revision `0012_web_auth`): passwords and second factors, one-time
set-password links, server-side sessions and the forms each session has already sent.

No secret is stored as given: passwords as Argon2id hashes, link and session secrets as their
SHA-256 (the cookie or link holds the secret; a copy of the database does not), and the TOTP
seed sealed to the vault's metadata key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class AccountSecret(Base):
    """An account's password hash, its sealed TOTP seed and its preferred page language."""

    __tablename__ = "account_secrets"

    # No foreign key, like the token register: keyed by the account's immutable id.
    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # RFC 6238 5.2: a code is accepted once; the last time step used is kept.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)


class PasswordLink(Base):
    """A one-time set-password link: its public id (in the ledger) and its secret's SHA-256."""

    __tablename__ = "password_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WebSession(Base):
    """A signed-in browser: its public id (the credential the ledger names), the SHA-256 of the
    cookie's secret, the account and generation it was opened for, and its CSRF token.

    `state` is `active`, or `second-factor` between a right password and the TOTP code.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    csrf: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebFormUse(Base):
    """A form a session sent once: a second submission of the same form is refused."""

    __tablename__ = "web_form_uses"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32), index=True)
    used_at: Mapped[datetime] = mapped_column(UtcDateTime())
