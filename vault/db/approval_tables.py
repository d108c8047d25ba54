"""Tables of the two-person rule (revision `0008_approvals`): requests and their votes.

Generic on purpose (DESIGN.md promise 10): an approval names its `kind` (what would run), its
`subject` (an item id, a key name, an export id) and a structural `payload`; a new kind needs
no new table. Free text (a request's note, a denial's reason) is sealed to the vault's metadata
identity (promise 1), never stored readable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class Approval(Base):
    """A request that waits for `quorum` people in all (the requester is the first of them).

    `state`: `pending` (waiting), `approved` (the quorum was reached and the action is running),
    `done` (it ran; `outcome` holds its structural result), `failed` (it was refused when it
    ran; `outcome` says why), `denied` (someone said no; nothing ran).
    """

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_state", "state", "requested_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(128))
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    sealed_note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    quorum: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ApprovalVote(Base):
    """One person's answer to an approval: `approve` or `deny` (with a sealed reason)."""

    __tablename__ = "approval_votes"

    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(128), primary_key=True)
    vote: Mapped[str] = mapped_column(String(16))
    voted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sealed_reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
