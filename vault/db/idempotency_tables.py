"""Idempotency keys of deposits (revision `0013_idempotency`; `vault.idempotency`).

A row remembers one key of one principal: while its deposit streams (`pending`, a lease the
request renews), then the answer it got (`done`) until the key expires. The key itself is
never stored, only its SHA-256 with the principal's name: a client may put anything in a key.
The answer is structural only (item id, size, SHA-256, the earlier item of the same bytes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime

PENDING: Final = "pending"
DONE: Final = "done"


class IdempotencyKey(Base):
    """One principal's idempotency key: the deposit in flight, or the answer it got."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    # Which request holds a pending key: a request whose lease ran out and was taken over must
    # not complete it.
    holder: Mapped[str] = mapped_column(String(32))
    # SHA-256 over the case, the content's SHA-256 and size: "the same bytes" (vault.idempotency).
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(String(32))
    touched_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
