"""Tables of exports to commissions (revision `0011_exports`): recipients and export requests.

A commission's recipient keys (age X25519 `age1...`, OpenSSH `ssh-ed25519`) are public keys, so
they are kept in the clear. An export keeps its parameters structural (case, kinds, dates); its
purpose, legal basis and search query repeat what a person wrote, so they are sealed to the
vault's metadata identity (promise 1). The bag itself is an object (`exports/<id>`), age
ciphertext to the commission's recipients, removed once `expires_at` passes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class CommissionRecipient(Base):
    """A public key an export to the account `user_name` is encrypted to."""

    __tablename__ = "commission_recipients"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the key
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    key_type: Mapped[str] = mapped_column(String(16))  # "age" or "ssh-ed25519"
    recipient: Mapped[str] = mapped_column(Text)  # the key itself, without an OpenSSH comment
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Export(Base):
    """An export of one case to one commission account, from its request to its expiry.

    `state`: `requested` (waiting for approval; a denied approval shows as `denied`), `queued`
    (approved, not built yet), `building` (a builder holds `lease_until`), `ready` (the object
    is stored), `failed` (nothing to export, or no recipients; `reason` says which), `revoked`
    (consent or grant withdrawn before download; `reason`), `expired` (the object was removed).
    """

    __tablename__ = "exports"
    __table_args__ = (Index("ix_exports_state", "state", "requested_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    commission: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    kinds: Mapped[list[str]] = mapped_column(JSON)
    date_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    date_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    has_query: Mapped[bool] = mapped_column(default=False)
    sealed_request: Mapped[bytes] = mapped_column(LargeBinary)  # purpose, legal basis, query
    approval_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # structural, no survivor text
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # what went in
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    object_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # of the age file
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # of the age file
    checkpoint_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    built_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
