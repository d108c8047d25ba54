"""The master key state every process reads (revision `0008_approvals`): the current version.

The keyring file holds the master keys; which version new item keys are wrapped under is kept
here, in the database every server and worker shares, so that a rotation is seen by all of
them on their next operation (issue 16 point 6; `vault.keystate`).
"""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base

MASTER = "master"


class KeyState(Base):
    """One named key's current version (`name` = "master": the item-key wrapping key)."""

    __tablename__ = "key_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    current_version: Mapped[int] = mapped_column(Integer)
