"""What `tvault verify` checks with the keys: ledger MACs, the checkpoint state, pinned checkpoints.

The chain, the tree and the signatures are checked in `vault.verify`; these checks need the
ledger key (`vault.ledger.mac`) or an auditor's pinned checkpoint, and catch a forger who holds
the database and the object store and recomputed every hash:

- an entry rewritten (or added) without the key has no valid MAC; the MAC of entry N covers
  entries 0..N through the chain, so runs of bad MACs are reported from the first one;
- a head moved back over dropped entries has no valid MAC (unless copied from an older copy of
  the database: see docs/ledger.md, "What each attack leaves");
- deleted checkpoint records and copies leave the checkpoint state row naming a checkpoint that
  is gone, or, if the row is reset too, a state without a valid MAC;
- a checkpoint an auditor kept (`tvault verify --trusted-checkpoint FILE`) must be consistent
  with the ledger as stored now: an RFC 9162 consistency proof from it to the current tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

import keys
from vault.ledger import mac, note
from vault.ledger.errors import LedgerError, ProofError
from vault.ledger.tree import MerkleTree, verify_consistency

ENTRY_MAC: Final = "ledger entry MAC invalid"
HEAD_MAC: Final = "ledger head MAC invalid"
STATE_MAC: Final = "checkpoint state MAC invalid"
CHECKPOINT_GONE: Final = "signed checkpoint missing"
TRUSTED_SIGNATURE: Final = "trusted checkpoint not signed by the log key"
TRUSTED_EMPTY: Final = "trusted checkpoint pins nothing"
TRUSTED_AHEAD: Final = "trusted checkpoint is larger than the ledger"
TRUSTED_FORK: Final = "trusted checkpoint inconsistent with the ledger"

# (subject, kind, detail): `vault.verify.Report.fail`.
Fail = Callable[[str, str, str], None]


class EntryMacs:
    """Checks each entry's MAC as the ledger is read; reports bad ones as runs of `seq`."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._runs: list[list[int]] = []

    def check(self, seq: int, entry_hash: bytes, stored: bytes | None) -> None:
        """Check the MAC `stored` beside entry `seq`, whose recomputed chain hash is given."""
        if mac.same(stored, mac.entry_mac(self._key, entry_hash)):
            return
        if self._runs and self._runs[-1][1] == seq - 1:
            self._runs[-1][1] = seq
        else:
            self._runs.append([seq, seq])

    def report(self, fail: Fail) -> None:
        """Report each run of entries with a missing or wrong MAC."""
        for first, last in self._runs:
            subject = f"entry {first}" if first == last else f"entry {first}-{last}"
            fail(subject, ENTRY_MAC, "missing or wrong: written or changed without the ledger key")


def check_head(key: bytes, size: int, last_hash: bytes, stored: bytes | None, fail: Fail) -> None:
    """Check the head row's MAC over its size and last hash."""
    if not mac.same(stored, mac.head_mac(key, size, last_hash)):
        fail(
            "ledger head",
            HEAD_MAC,
            f"size {size} or its hash was set without the ledger key (entries dropped or added)",
        )


def check_state(
    key: bytes,
    size: int,
    root: bytes,
    stored: bytes | None,
    records: Mapping[int, bytes],
    fail: Fail,
) -> None:
    """Check the checkpoint state row (newest size and root) against its MAC and the records.

    `records` maps each recorded checkpoint's size to its root.
    """
    if not mac.same(stored, mac.checkpoint_mac(key, size, root, len(records))):
        fail(
            "checkpoint state",
            STATE_MAC,
            f"size {size}, its root or the count of {len(records)} checkpoints changed "
            "without the ledger key",
        )
    if size > 0 and records.get(size) != root:
        fail(f"checkpoint {size}", CHECKPOINT_GONE, "the checkpoint state names it; no record")


def check_trusted(
    notes: Iterable[str], vkey: str, tree: MerkleTree, fail: Fail, remark: Callable[[str], None]
) -> None:
    """Check each pinned checkpoint `notes` against the ledger's tree as rebuilt from entries.

    A pinned checkpoint must be signed by the log key (`vkey`) for this log's origin, and the
    current tree must extend it (RFC 9162 2.1.4 consistency proof, checked here as an auditor
    would); a pinned size above the tree's means entries were dropped.
    """
    origin = note.parse_verifier_key(vkey)[0]
    for text in notes:
        try:
            body = note.parse_checkpoint(note.open_note(text, vkey, keys.verify_ed25519))
        except LedgerError as exc:
            fail("trusted checkpoint", TRUSTED_SIGNATURE, str(exc))
            continue
        subject = f"trusted checkpoint {body.size}"
        if body.origin != origin:
            fail(subject, TRUSTED_SIGNATURE, f"its origin is {body.origin!r}, not {origin!r}")
        elif body.size == 0:
            fail(subject, TRUSTED_EMPTY, "a checkpoint of the empty tree is consistent with any")
        elif body.size > tree.size:
            fail(
                subject,
                TRUSTED_AHEAD,
                f"it signs {body.size} entries, the ledger holds {tree.size}: entries were dropped",
            )
        else:
            try:
                proof = tree.consistency_proof(body.size, tree.size)
                verify_consistency(body.size, tree.size, body.root, tree.root(), proof)
            except ProofError as exc:
                fail(subject, TRUSTED_FORK, f"{exc}: the entries it signed were changed")
                continue
            remark(f"{subject}: consistent with the ledger of {tree.size} entries")
