"""Tables of the shared search vocabulary (revision `0014_vocabulary`; `vault.vocabulary`).

Prefix and fuzzy queries expand against the words the index holds, which the engines keep only
as keyed digests; so the words themselves are kept here, where every process and host sees
them: a log of sealed changes (the words one index commit added, or a snapshot of all of them).
Each row is an age file sealed to the vault's vocabulary identity (DESIGN.md promise 1); only
its position, kind, size and time are in the clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, Boolean, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime

HEAD: Final = "head"


class VocabularyChange(Base):
    """One sealed change of the vocabulary, or a sealed snapshot of all of it."""

    __tablename__ = "search_vocabulary"

    # Given under the head row's lock, so positions are in commit order (a reader that saw
    # position N has seen every change before it).
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    snapshot: Mapped[bool] = mapped_column(Boolean)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class VocabularyHead(Base):
    """The last position given (one row, `name` = "head"): updating it serialises writers."""

    __tablename__ = "search_vocabulary_head"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
