"""Key state every process reads: the current master key version (revision `0008_approvals`)
and the item-KEK epochs (revision `0010_item_kek`).

The keyring file holds the master keys; which version new item keys are wrapped under is kept
here, in the database every server and worker shares, so that a rotation is seen by all of
them on their next operation (issue 16 point 6; `vault.keystate`).

`keys.item_keys`: every item's key-encryption key is sealed under the *current* epoch's key, a
keyring secret. Crypto-shredding starts a new epoch, moves every remaining KEK to it, and marks
the old one `retired`; once its key is deleted from the keyring, the row goes too. Exactly one
epoch row is `current` once the first item was deposited (`vault.item_keys`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime

MASTER = "master"
CURRENT: Final = "current"
RETIRED: Final = "retired"


class KeyState(Base):
    """One named key's current version (`name` = "master": the item-key wrapping key)."""

    __tablename__ = "key_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    current_version: Mapped[int] = mapped_column(Integer)


class KekEpoch(Base):
    """One epoch of item KEKs: its name (the keyring secret's suffix) and whether it is current."""

    __tablename__ = "kek_epochs"

    epoch: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
