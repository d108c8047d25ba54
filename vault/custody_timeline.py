"""An item's custody timeline (its ledger entries, for those who may read them) and the check
of each entry's inclusion proof against the latest signed checkpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select

import keys
from policies import Principal, actions
from vault import ledger
from vault.access import authorize_item, may_read_entry
from vault.ledger import checkpoints, note
from vault.ledger.tables import LedgerRow
from vault.ledger.tree import verify_inclusion
from vault.parts import Vault

MAX_ENTRIES: Final = 1000  # an item's timeline shown at once (each step is one entry)
PROVEN, NOT_YET, FAILED = "proven", "not yet in a signed checkpoint", "failed"


@dataclass(frozen=True)
class EntryCheck:
    """The outcome for one entry: `proven`, `not yet in a signed checkpoint`, or `failed`."""

    seq: int
    outcome: str
    detail: str | None = None


@dataclass(frozen=True)
class CustodyCheck:
    """The checkpoint the entries were checked against (None: none signed yet) and each one."""

    checkpoint_size: int | None
    origin: str | None
    entries: list[EntryCheck]

    @property
    def all_proven(self) -> bool:
        """Whether every entry is proven (none pending, none failed)."""
        return bool(self.entries) and all(e.outcome == PROVEN for e in self.entries)


def _allow(vault: Vault, principal: Principal, item_id: str) -> None:
    # Auditors read every entry; anyone else the entries of an item they may see, and a
    # refusal is itself an entry (authorize_item).
    if not may_read_entry(vault.sessions, principal, item_id):
        authorize_item(vault.sessions, principal, actions.ITEM_STATUS, item_id)


def entries(vault: Vault, principal: Principal, item_id: str) -> list[ledger.LedgerEntry]:
    """Return the ledger entries about `item_id`, oldest first (sealed details stay sealed).

    Raises `NotFound` or `Forbidden` (an `access denied` entry) for one who may not read them.
    """
    _allow(vault, principal, item_id)
    with vault.sessions() as session:
        seqs = session.scalars(
            select(LedgerRow.seq)
            .where(LedgerRow.item_id == item_id)
            .order_by(LedgerRow.seq)
            .limit(MAX_ENTRIES)
        ).all()
        return [ledger.entry(session, int(seq)) for seq in seqs]


@dataclass(frozen=True)
class CustodyProofs:
    """What a check of an item's timeline needs: its entries, the latest signed checkpoint (None:
    none signed yet), the log key, and the inclusion proof of each entry inside that checkpoint
    (`error` says why there are none when the stored ledger no longer yields them)."""

    entries: list[ledger.LedgerEntry]
    checkpoint: checkpoints.SignedCheckpoint | None
    log_key: str
    proofs: dict[int, ledger.InclusionProof]
    error: str | None
    with_entries: bool

    def to_json(self, item_id: str) -> dict[str, Any]:
        """Return the form a browser checks by itself: the signed note as signed, the verifier
        key, and per entry its canonical JSON (for one who may read it, else None) and leaf hash
        (base64) with its audit path (base64 hashes) to the checkpoint's tree, or None."""
        size = self.checkpoint.size if self.checkpoint is not None else None
        shown = []
        for entry in self.entries:
            proof = self.proofs.get(entry.seq)
            shown.append(
                {
                    "seq": entry.seq,
                    "entry": entry.canonical.decode() if self.with_entries else None,
                    "leaf_hash": base64.b64encode(entry.leaf_hash).decode(),
                    "proof": None
                    if proof is None
                    else {
                        "size": proof.size,
                        "hashes": [base64.b64encode(h).decode() for h in proof.hashes],
                    },
                }
            )
        return {
            "item": item_id,
            "log_key": self.log_key,
            "checkpoint": self.checkpoint.note if self.checkpoint is not None else None,
            "size": size,
            "error": self.error,
            "entries": shown,
        }


def proofs(vault: Vault, principal: Principal, item_id: str) -> CustodyProofs:
    """Gather the entries about `item_id`, the latest signed checkpoint, the log key and each
    entry's RFC 9162 inclusion proof in that checkpoint; nothing is checked here.

    Raises as `entries` does (the same policy, the same refusal and ledger entry).
    """
    shown = entries(vault, principal, item_id)
    log_key = vault.checkpointer.verifier_key()
    with_entries = may_read_entry(vault.sessions, principal, item_id)
    with vault.sessions() as session:
        signed = checkpoints.latest(session)
        if signed is None:
            return CustodyProofs(shown, None, log_key, {}, None, with_entries)
        inside = [e.seq for e in shown if e.seq < signed.size]
        try:
            found = {p.seq: p for p in ledger.inclusions(session, inside, signed.size)}
        except ledger.LedgerError as exc:
            return CustodyProofs(shown, signed, log_key, {}, str(exc), with_entries)
    return CustodyProofs(shown, signed, log_key, found, None, with_entries)


def verify(vault: Vault, principal: Principal, item_id: str) -> CustodyCheck:
    """Check each entry about `item_id` against the latest signed checkpoint: the checkpoint's
    signature with the log key, then the entry's RFC 9162 inclusion proof to its root.

    Raises as `entries` does.
    """
    gathered = proofs(vault, principal, item_id)
    shown, signed, log_key = gathered.entries, gathered.checkpoint, gathered.log_key
    if signed is None:
        return CustodyCheck(None, None, [EntryCheck(e.seq, NOT_YET) for e in shown])
    if gathered.error is not None:
        return CustodyCheck(
            signed.size, None, [EntryCheck(e.seq, FAILED, gathered.error) for e in shown]
        )
    proven = gathered.proofs
    try:
        head = note.parse_checkpoint(note.open_note(signed.note, log_key, keys.verify_ed25519))
    except ledger.LedgerError as exc:
        failed = [EntryCheck(e.seq, FAILED, f"checkpoint signature: {exc}") for e in shown]
        return CustodyCheck(signed.size, None, failed)
    results = []
    for entry in shown:
        proof = proven.get(entry.seq)
        if proof is None:
            results.append(EntryCheck(entry.seq, NOT_YET))
            continue
        try:
            if proof.entry != entry.canonical:
                raise ledger.ProofError("the proven entry is not the one shown")
            verify_inclusion(entry.seq, head.size, entry.leaf_hash, proof.hashes, head.root)
        except ledger.LedgerError as exc:
            results.append(EntryCheck(entry.seq, FAILED, str(exc)))
            continue
        results.append(EntryCheck(entry.seq, PROVEN))
    return CustodyCheck(head.size, head.origin, results)
