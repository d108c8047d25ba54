"""Tables of signed deposits and fixity (revision `0005_signatures`).

Depositor public keys registered to accounts; the signed statements kept with each item (the
statement names the original filename, survivor data, so it is sealed to the item's own
identity: only its SHA-256 and the signer's key id stay in the clear, promise 1); and the
SHA-256 of each item's ciphertext, recorded in the deposit's one pass so that `tvault verify
--fast` can see a changed byte without decrypting.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class DepositorKey(Base):
    """A public key (raw Ed25519 or OpenSSH) registered to an account by a custodian."""

    __tablename__ = "depositor_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # keys.key_id
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ItemSignature(Base):
    """A signed statement about an item: the depositor's (number 1) or a later co-signature."""

    __tablename__ = "item_signatures"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # "depositor" or "cosigner"
    signer: Mapped[str] = mapped_column(String(128))  # the account
    key_id: Mapped[str] = mapped_column(String(64))
    statement_sha256: Mapped[str] = mapped_column(String(64))
    sealed_statement: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(Text)
    public_key: Mapped[str] = mapped_column(Text)  # as registered when the signature was checked
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ItemCiphertext(Base):
    """The SHA-256 and size of an item's object (the age ciphertext) as stored at deposit."""

    __tablename__ = "item_ciphertexts"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
