"""Tables of the vault core (revision `0001_core`): users, cases, items and their wrapped keys.

Promise 1 (DESIGN.md): only structural metadata is in the clear. Case names and item metadata
(title, original filename, notes) are stored as age-sealed blobs: a case name is sealed to the
vault's metadata key; an item's metadata is sealed to the item's own identity, so shredding the
item key also destroys its metadata. Account names are operator data (chosen by the custodian,
seen in every token and ledger entry) and stay in the clear; docs/usage.md says so.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class User(Base):
    """A local account with one role."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    disabled: Mapped[bool] = mapped_column(default=False)
    # Grows on every role change and disabling; tokens name the generation they were issued for.
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class Case(Base):
    """A case groups the items of one matter; its name is sealed."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed_name: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.name"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Item(Base):
    """A deposited original: structural metadata in the clear, the rest sealed."""

    __tablename__ = "items"
    # Finds an earlier item of the same bytes in a case (duplicates; revision 0013_idempotency).
    __table_args__ = (Index("ix_items_case_sha256", "case_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON)
    consent: Mapped[list[str]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_name: Mapped[str] = mapped_column(String(128), unique=True)
    depositor: Mapped[str] = mapped_column(ForeignKey("users.name"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sealed_meta: Mapped[bytes] = mapped_column(LargeBinary)


class ItemKey(Base):
    """The item's age identity, wrapped by the keyring's master key (never in object storage).

    Crypto-shredding deletes this row: the object and the sealed metadata become unreadable.
    """

    __tablename__ = "item_keys"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class CaseGrant(Base):
    """A role granted to an account on one case (policies.Principal.grants)."""

    __tablename__ = "case_grants"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime())
