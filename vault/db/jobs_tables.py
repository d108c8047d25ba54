"""Tables of the job queue (revision `0003_jobs`): durable stage jobs and extracted-text links.

A job is one stage (`extract`, `index`, ...) of one item. Its `last_error` is a reason a
custodian can read; it comes from `ingest.ExtractionError.reason` or names an exception type,
never a survivor's words (DESIGN.md promise 1). An `ItemText` row links an item to its sealed
text object; only structural facts (MIME type, language, sizes) are in the clear, the
document's own title and author are sealed to the item's identity like its other metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class Job(Base):
    """One stage of one item, claimed by a worker under a lease that its heartbeat renews."""

    __tablename__ = "jobs"
    # One job per stage and item: enqueueing twice is a no-op, so stages can be re-run safely.
    __table_args__ = (
        UniqueConstraint("item_id", "kind", name="uq_jobs_item_id_kind"),
        Index("ix_jobs_claim", "state", "run_after", "id"),  # the claim order (vault.jobs)
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ItemText(Base):
    """The sealed extracted text of an item: where it is, and what may be said of it openly."""

    __tablename__ = "item_texts"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    object_name: Mapped[str] = mapped_column(String(128), unique=True)
    mime_type: Mapped[str] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(16))
    chars: Mapped[int] = mapped_column(BigInteger)
    sealed_meta: Mapped[bytes] = mapped_column(LargeBinary)
    tool: Mapped[str] = mapped_column(String(64))
    extracted_at: Mapped[datetime] = mapped_column(UtcDateTime())
