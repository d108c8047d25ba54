"""Signed checkpoints of the ledger tree: made on demand or when due, never inconsistent.

Before it signs size N the log recomputes, from the stored leaves, the root at the size M of
the last checkpoint it signed and refuses unless it equals the signed root; it also re-hashes
the entries added since M and checks their chain. So a checkpoint is only ever signed over a
tree that extends every earlier one (tlog-checkpoint: "A log MUST not sign any checkpoint which
is inconsistent with any checkpoint it previously signed").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.orm import Session, sessionmaker

from vault.ledger import mac, note
from vault.ledger.entry import format_time, parse_time
from vault.ledger.errors import LedgerError
from vault.ledger.ports import CheckpointStore, LogSigner
from vault.ledger.tables import (
    CHECKPOINT,
    GENESIS,
    HEAD,
    CheckpointRow,
    LedgerRow,
    LedgerState,
)
from vault.ledger.tree import MerkleTree

_ENTRIES = cast(Table, LedgerRow.__table__)
_STATE = cast(Table, LedgerState.__table__)
_CHECKPOINTS = cast(Table, CheckpointRow.__table__)
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint as the log issued it: the C2SP signed note and where its copy is stored."""

    size: int
    root: bytes
    note: str
    time: datetime
    object_name: str


def object_name(size: int) -> str:
    """Return the object-store name of the checkpoint of `size` (sorts by size)."""
    return f"ledger/checkpoints/{size:020d}"


def load_tree(session: Session, size: int) -> MerkleTree:
    """Build the tree of the first `size` entries from their stored leaf hashes.

    Raises `LedgerError` if an entry is missing (a gap in `seq`).
    """
    hashes = [
        bytes(value)
        for (value,) in session.execute(
            select(_ENTRIES.c.leaf_hash)
            .where(_ENTRIES.c.seq < size)
            .order_by(_ENTRIES.c.seq)
            .execution_options(yield_per=10000)
        )
    ]
    if len(hashes) != size:
        raise LedgerError(f"the ledger has {len(hashes)} of its first {size} entries")
    return MerkleTree(hashes)


def latest(session: Session) -> SignedCheckpoint | None:
    """Return the newest checkpoint, or None if none was signed yet."""
    row = session.execute(
        select(_CHECKPOINTS).order_by(_CHECKPOINTS.c.size.desc()).limit(1)
    ).one_or_none()
    return _from_row(row) if row is not None else None


def get(session: Session, size: int) -> SignedCheckpoint:
    """Return the checkpoint of `size`. Raises `LedgerError` if none was signed at that size."""
    row = session.execute(select(_CHECKPOINTS).where(_CHECKPOINTS.c.size == size)).one_or_none()
    if row is None:
        raise LedgerError(f"no checkpoint was signed at size {size}")
    return _from_row(row)


def all_checkpoints(session: Session) -> list[SignedCheckpoint]:
    """Return every stored checkpoint, smallest first."""
    rows = session.execute(select(_CHECKPOINTS).order_by(_CHECKPOINTS.c.size)).all()
    return [_from_row(row) for row in rows]


def create(
    session: Session,
    *,
    signer: LogSigner,
    store: CheckpointStore,
    origin: str,
    now: datetime | None = None,
) -> SignedCheckpoint:
    """Sign a checkpoint of every committed entry, store a copy, record it; return it.

    Runs in `session`'s transaction (the caller commits). If no entry was added since the last
    checkpoint, returns that one unchanged. The copy goes to `store.put_locked` before the row
    is written, so a recorded checkpoint always has its copy.

    Raises `LedgerError` (and signs nothing) if the stored ledger disagrees with the last signed
    checkpoint, or its new entries do not chain or lack a valid MAC under the ledger key bound
    to `session`; `NoteError` if `origin` is not a valid key name.
    """
    note.check_name(origin, what="origin")
    key = mac.key_of(session)
    moment = now if now is not None else datetime.now(UTC)
    # Lock the checkpoint row first: one checkpointer at a time, across processes.
    state = session.execute(
        update(_STATE)
        .where(_STATE.c.name == CHECKPOINT)
        .values(size=_STATE.c.size)
        .returning(_STATE.c.size, _STATE.c.hash, _STATE.c.mac)
    ).one_or_none()
    if state is None:
        raise LedgerError("the ledger has no checkpoint row: the database is not migrated")
    old_size, old_root = int(state.size), bytes(state.hash)
    previous = latest(session)
    if previous is not None and (previous.size, previous.root) != (old_size, old_root):
        raise LedgerError("the checkpoint table disagrees with the last signed checkpoint")
    # Never sign over state the ledger key did not write: checkpoints deleted and the state
    # reset, or a head moved back over dropped entries.
    count = mac.checkpoint_count(session)
    if not mac.same(state.mac, mac.checkpoint_mac(key, old_size, old_root, count)):
        raise LedgerError("the checkpoint state has no valid MAC: refusing to sign")
    head = session.execute(select(_STATE).where(_STATE.c.name == HEAD)).one()
    size = int(head.size)
    if not mac.same(head.mac, mac.head_mac(key, size, bytes(head.hash))):
        raise LedgerError("the ledger head has no valid MAC: refusing to sign")
    if previous is not None and size == previous.size:
        return previous
    if size < old_size:
        raise LedgerError(f"the ledger shrank from {old_size} to {size} entries: refusing to sign")

    tree = load_tree(session, size)
    if tree.root(old_size) != old_root:
        raise LedgerError(
            f"the stored ledger no longer matches checkpoint {old_size}: refusing to sign"
        )
    _check_new_entries(session, old_size, size, tree, key)
    root = tree.root()

    text = note.Checkpoint(origin=origin, size=size, root=root).text()
    signed = note.sign(text, origin, signer)
    name = object_name(size)
    store.put_locked(name, signed.encode())
    session.execute(
        _CHECKPOINTS.insert().values(
            size=size, root=root, note=signed, time=format_time(moment), object_name=name
        )
    )
    state_mac = mac.checkpoint_mac(key, size, root, count + 1)
    session.execute(
        update(_STATE)
        .where(_STATE.c.name == CHECKPOINT)
        .values(size=size, hash=root, mac=state_mac)
    )
    return SignedCheckpoint(size=size, root=root, note=signed, time=moment, object_name=name)


def due(
    session: Session, *, every_entries: int, every_seconds: float, now: datetime | None = None
) -> bool:
    """Say whether a checkpoint is due: `every_entries` new entries, or any new entry and
    `every_seconds` since the last checkpoint."""
    moment = now if now is not None else datetime.now(UTC)
    size = int(session.execute(select(_STATE.c.size).where(_STATE.c.name == HEAD)).scalar_one())
    previous = latest(session)
    if previous is None:
        return True
    new = size - previous.size
    if new <= 0:
        return False
    return new >= every_entries or moment - previous.time >= timedelta(seconds=every_seconds)


class Checkpointer:
    """Signs checkpoints when due, from a thread the server starts, and on demand."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        signer: LogSigner,
        store: CheckpointStore,
        origin: str,
        every_entries: int = 1000,
        every_seconds: float = 60.0,
    ) -> None:
        if every_entries < 1 or every_seconds <= 0:
            raise ValueError("checkpoint intervals must be positive")
        note.check_name(origin, what="origin")
        self._sessions = sessions
        self._signer = signer
        self._store = store
        self.origin = origin
        self.every_entries = every_entries
        self.every_seconds = every_seconds

    def verifier_key(self) -> str:
        """Return the log's public key in the C2SP verifier-key format."""
        return note.verifier_key(self.origin, self._signer.public_key_bytes())

    def checkpoint(self, now: datetime | None = None) -> SignedCheckpoint:
        """Sign a checkpoint now (or return the current one if nothing changed). See `create`."""
        with self._sessions.begin() as session:
            return create(
                session, signer=self._signer, store=self._store, origin=self.origin, now=now
            )

    def checkpoint_if_due(self, now: datetime | None = None) -> SignedCheckpoint | None:
        """Sign a checkpoint if one is due; return it, or None."""
        with self._sessions() as session:
            if not due(
                session,
                every_entries=self.every_entries,
                every_seconds=self.every_seconds,
                now=now,
            ):
                return None
        return self.checkpoint(now)

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Check every `poll_seconds` until `stop` is set, signing when due.

        Errors propagate: a ledger that cannot be checkpointed is a fault to surface, not retry.
        """
        while not stop.wait(poll_seconds):
            self.checkpoint_if_due()


def _check_new_entries(
    session: Session, start: int, stop: int, tree: MerkleTree, key: bytes
) -> None:
    """Re-hash entries `start <= seq < stop`; check their chain, leaf hashes and MACs.

    A MAC check here means a forger who rewrote the unsigned tail (and its chain) cannot get
    the log to sign the forgery.
    """
    prev = GENESIS
    if start > 0:
        prev = bytes(
            session.execute(
                select(_ENTRIES.c.entry_hash).where(_ENTRIES.c.seq == start - 1)
            ).scalar_one()
        )
    # Batches by seq rather than a server-side cursor, so raising midway leaves nothing open.
    for batch_start in range(start, stop, _BATCH):
        rows = session.execute(
            select(_ENTRIES.c.seq, _ENTRIES.c.entry, _ENTRIES.c.entry_hash, _ENTRIES.c.mac)
            .where(_ENTRIES.c.seq >= batch_start, _ENTRIES.c.seq < min(stop, batch_start + _BATCH))
            .order_by(_ENTRIES.c.seq)
        ).all()
        for seq, canonical, stored_hash, stored_mac in rows:
            data = bytes(canonical)
            # json.loads only: the full RFC 8785 re-check is `tvault verify`'s (and 5x slower).
            try:
                document = json.loads(data)
                chained = document["seq"] == seq and document["prev"] == prev.hex()
            except (ValueError, KeyError, TypeError):
                chained = False
            digest = sha256(data).digest()
            if not chained or digest != bytes(stored_hash):
                raise LedgerError(f"ledger entry {seq} does not chain: refusing to sign")
            if sha256(b"\x00" + data).digest() != tree.leaf(seq):
                raise LedgerError(f"ledger entry {seq} does not match its leaf: refusing to sign")
            if not mac.same(stored_mac, mac.entry_mac(key, digest)):
                raise LedgerError(f"ledger entry {seq} has no valid MAC: refusing to sign")
            prev = digest


def _from_row(row: Row[Any]) -> SignedCheckpoint:
    return SignedCheckpoint(
        size=int(row.size),
        root=bytes(row.root),
        note=str(row.note),
        time=parse_time(row.time),
        object_name=str(row.object_name),
    )
