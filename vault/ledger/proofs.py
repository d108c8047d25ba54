"""Inclusion and consistency proofs against signed checkpoints, in the form the API serves."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vault.ledger import checkpoints
from vault.ledger.custody import entry as load_entry
from vault.ledger.entry import leaf_hash
from vault.ledger.errors import LedgerError, ProofError


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Entry `seq` (its canonical JSON) is leaf `seq` of the tree signed in `checkpoint`."""

    seq: int
    size: int
    entry: bytes
    hashes: list[bytes]
    checkpoint: str

    def to_json(self, *, with_entry: bool = True) -> dict[str, Any]:
        """Return the API form: bytes as standard base64, the entry as its JSON text.

        `leaf_hash` is the RFC 9162 leaf hash the proof starts from; without `with_entry` the
        entry is None (withheld) and the proof still verifies from that hash.
        """
        return {
            "seq": self.seq,
            "size": self.size,
            "entry": self.entry.decode() if with_entry else None,
            "leaf_hash": base64.b64encode(leaf_hash(self.entry)).decode(),
            "hashes": [base64.b64encode(h).decode() for h in self.hashes],
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree signed in `new_checkpoint` extends the one signed in `old_checkpoint`."""

    old_size: int
    new_size: int
    hashes: list[bytes]
    old_checkpoint: str
    new_checkpoint: str

    def to_json(self) -> dict[str, Any]:
        """Return the API form: hashes as standard base64."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "hashes": [base64.b64encode(h).decode() for h in self.hashes],
            "old_checkpoint": self.old_checkpoint,
            "new_checkpoint": self.new_checkpoint,
        }


def _checkpoint(session: Session, size: int | None) -> checkpoints.SignedCheckpoint:
    if size is None:
        current = checkpoints.latest(session)
        if current is None:
            raise ProofError("no checkpoint has been signed yet")
        return current
    try:
        return checkpoints.get(session, size)
    except LedgerError as exc:
        raise ProofError(str(exc)) from exc


def inclusion(session: Session, seq: int, size: int | None = None) -> InclusionProof:
    """Prove entry `seq` is in the checkpoint of `size` (default: the newest checkpoint).

    Raises `ProofError` if there is no such checkpoint or `seq` is not below its size, and
    `LedgerError` if the stored tree no longer gives the signed root.
    """
    signed = _checkpoint(session, size)
    if not 0 <= seq < signed.size:
        raise ProofError(
            f"entry {seq} is not in the checkpoint of size {signed.size}; "
            "ask for a newer checkpoint"
        )
    tree = checkpoints.load_tree(session, signed.size)
    if tree.root() != signed.root:
        raise LedgerError(f"the stored ledger no longer matches checkpoint {signed.size}")
    entry = load_entry(session, seq)
    return InclusionProof(
        seq=seq,
        size=signed.size,
        entry=entry.canonical,
        hashes=tree.inclusion_proof(seq, signed.size),
        checkpoint=signed.note,
    )


def inclusions(
    session: Session, seqs: Iterable[int], size: int | None = None
) -> Iterator[InclusionProof]:
    """Prove each entry of `seqs` is in the checkpoint of `size` (default: the newest), in
    the order given, loading the tree once (for an export's many entries; `inclusion` loads it
    per call). A generator: keep `session` open while it is read (`CustodyRecord.proofs` may
    be one).

    Raises as `inclusion` does, at the first entry that cannot be proven.
    """
    signed = _checkpoint(session, size)
    tree = checkpoints.load_tree(session, signed.size)
    if tree.root() != signed.root:
        raise LedgerError(f"the stored ledger no longer matches checkpoint {signed.size}")
    for seq in seqs:
        if not 0 <= seq < signed.size:
            raise ProofError(f"entry {seq} is not in the checkpoint of size {signed.size}")
        yield InclusionProof(
            seq=seq,
            size=signed.size,
            entry=load_entry(session, seq).canonical,
            hashes=tree.inclusion_proof(seq, signed.size),
            checkpoint=signed.note,
        )


def consistency(session: Session, old_size: int, new_size: int | None = None) -> ConsistencyProof:
    """Prove the checkpoint of `new_size` (default the newest) extends the one of `old_size`.

    Raises `ProofError` if either size has no checkpoint or `old_size > new_size`, and
    `LedgerError` if the stored tree no longer gives the signed roots.
    """
    new = _checkpoint(session, new_size)
    old = _checkpoint(session, old_size)
    if old.size > new.size:
        raise ProofError(f"no consistency proof from size {old.size} to {new.size}")
    tree = checkpoints.load_tree(session, new.size)
    if tree.root() != new.root or tree.root(old.size) != old.root:
        raise LedgerError("the stored ledger no longer matches its checkpoints")
    return ConsistencyProof(
        old_size=old.size,
        new_size=new.size,
        hashes=tree.consistency_proof(old.size, new.size),
        old_checkpoint=old.note,
        new_checkpoint=new.note,
    )
