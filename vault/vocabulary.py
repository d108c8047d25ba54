"""The search vocabulary in the metadata database, shared by every process (a `VocabularyStore`).

The index engines hold keyed digests only, so the words prefix and fuzzy queries expand against
(`tort*`, `Mamani~1`) are kept apart: here, as a log of changes every server and worker reads,
each sealed with age to the vault's vocabulary identity (DESIGN.md promise 1; docs/search.md
"The shared vocabulary"). An index commit appends the words it added; a background job appends
them in the transaction that records and completes the job (`joined`), so a completed index job
always has its words saved. Positions are given under the head row's lock, in commit order.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

import keys
from search import IndexFormatError, VocabularyLog
from vault.db.search_tables import HEAD, VocabularyChange, VocabularyHead

_CHANGES = cast(Table, VocabularyChange.__table__)
_HEAD = cast(Table, VocabularyHead.__table__)
_ADVANCE = (
    update(_HEAD)
    .where(_HEAD.c.name == HEAD)
    .values(position=_HEAD.c.position + 1)
    .returning(_HEAD.c.position)
)

_local = threading.local()


@contextlib.contextmanager
def joined(session: Session) -> Iterator[None]:
    """Make every `DatabaseVocabulary` of `session`'s database write, in this thread, inside
    `session`'s transaction: the words then commit (or roll back) with what it records."""
    previous = getattr(_local, "session", None)
    _local.session = session
    try:
        yield
    finally:
        _local.session = previous


class DatabaseVocabulary:
    """The vocabulary log in the tables of `vault.db.search_tables`, sealed to `identity`."""

    def __init__(self, sessions: sessionmaker[Session], identity: str) -> None:
        self._sessions = sessions
        self._identity = identity
        self._recipient = keys.recipient_of(identity)

    def read(self, after: int) -> VocabularyLog:
        """Return the changes after position `after`; from the latest snapshot on (`reset`) if
        a snapshot is among them. Raises `IndexFormatError` if a change does not open."""
        columns = (_CHANGES.c.position, _CHANGES.c.snapshot, _CHANGES.c.sealed)
        with self._sessions() as session:
            rows = session.execute(
                select(*columns).where(_CHANGES.c.position > after).order_by(_CHANGES.c.position)
            ).all()
            reset = any(row.snapshot for row in rows)
            if reset:
                # One statement, so the snapshot and the changes kept beside it are consistent.
                rows = session.execute(select(*columns).order_by(_CHANGES.c.position)).all()
        if not rows:
            return VocabularyLog(after)
        position = max(after, rows[-1].position)
        if reset:
            latest = max(row.position for row in rows if row.snapshot)
            # The snapshot first, then every change it kept (they came after its base).
            rows = [r for r in rows if r.position == latest] + [r for r in rows if not r.snapshot]
        return VocabularyLog(position, tuple(self._open(row.sealed) for row in rows), reset)

    def append(self, change: bytes) -> None:
        """Save `change` at the next position (inside the `joined` transaction, if any)."""
        with self._session() as session:
            session.add(self._row(session, change, snapshot=False))

    def replace(self, snapshot: bytes, based_on: int | None) -> None:
        """Save `snapshot` and drop the changes up to `based_on` (None: all of them)."""
        with self._session() as session:
            row = self._row(session, snapshot, snapshot=True)
            gone = delete(_CHANGES)
            if based_on is not None:
                gone = gone.where(_CHANGES.c.position <= based_on)
            session.execute(gone)
            session.add(row)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        shared: Session | None = getattr(_local, "session", None)
        if shared is not None and shared.get_bind() is self._sessions.kw["bind"]:
            yield shared
            shared.flush()
            return
        with self._sessions.begin() as session:
            yield session

    def _row(self, session: Session, data: bytes, *, snapshot: bool) -> VocabularyChange:
        sealed = io.BytesIO()
        keys.seal(io.BytesIO(data), sealed, [self._recipient])  # before the lock is taken
        position = session.execute(_ADVANCE).scalar_one_or_none()
        if position is None:
            raise IndexFormatError("the vocabulary has no head row: the database is not migrated")
        return VocabularyChange(
            position=int(position),
            snapshot=snapshot,
            sealed=sealed.getvalue(),
            created_at=datetime.now(UTC),
        )

    def _open(self, sealed: bytes) -> bytes:
        try:
            return keys.unseal_bytes(sealed, self._identity)
        except keys.UnsealError as exc:
            raise IndexFormatError("a vocabulary change does not open with this key") from exc


def import_file(path: Path, store: DatabaseVocabulary) -> bool:
    """Move the sealed vocabulary file of a vault made before the shared vocabulary into
    `store` (unless the store already holds words), then delete the file. Returns whether a
    file was there. Raises `IndexFormatError` if it does not open with the store's identity."""
    if not path.exists():
        return False
    if store.read(0).position == 0:
        with open(path, "rb") as source:
            sealed = source.read()
        store.replace(store._open(sealed), None)
    path.unlink()
    return True
