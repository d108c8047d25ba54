"""Tables of access and consent (revision `0004_access`): consent versions, legal holds,
identity fields and redacted renditions.

Promise 1 (DESIGN.md): consent scopes are structural and stay in the clear; a consent form,
identity fields and the redacted rendition's metadata are sealed to the item's own identity, so
crypto-shredding the item key destroys them with the item. Rows here are removed or emptied by
`vault.shred` as well, so nothing readable depends on the shredding alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class ConsentRecord(Base):
    """One version of an item's consent: the scopes in force from `recorded_at` on.

    Version 1 is the consent given at deposit; `Item.consent` always equals the newest version.
    """

    __tablename__ = "consent_records"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The signed consent form, sealed to the item identity (None: no form, or shredded).
    sealed_form: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class LegalHold(Base):
    """An item under legal hold: it may not be crypto-shredded while this row exists."""

    __tablename__ = "legal_holds"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ItemIdentity(Base):
    """The survivor's identity fields of an item, sealed to the item identity."""

    __tablename__ = "item_identities"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RedactedRendition(Base):
    """A redacted rendition of an item's document, sealed to the item identity in the store.

    This is what principals obliged to `redact_identities` download instead of the original.
    """

    __tablename__ = "redacted_renditions"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    object_name: Mapped[str] = mapped_column(String(128), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
