"""The custody ledger: hash-chained entries, an RFC 9162 Merkle tree, signed C2SP checkpoints."""

from vault.ledger import actions
from vault.ledger.checkpoints import Checkpointer, SignedCheckpoint
from vault.ledger.custody import (
    Actor,
    actor_name,
    append,
    entries,
    entry,
    item_entries,
    refusals_noted,
    sealed_details,
    size,
    unwatch_refusals,
    watch_refusals,
)
from vault.ledger.entry import LedgerEntry
from vault.ledger.errors import LedgerError, ProofError
from vault.ledger.note import NoteError, verifier_key
from vault.ledger.ports import CheckpointStore, LogSigner
from vault.ledger.proofs import (
    ConsistencyProof,
    InclusionProof,
    consistency,
    inclusion,
    inclusions,
)
from vault.ledger.service import CheckpointService, default_origin, make_checkpointer

__all__ = [
    "Actor",
    "CheckpointService",
    "CheckpointStore",
    "Checkpointer",
    "ConsistencyProof",
    "InclusionProof",
    "LedgerEntry",
    "LedgerError",
    "LogSigner",
    "NoteError",
    "ProofError",
    "SignedCheckpoint",
    "actions",
    "actor_name",
    "append",
    "consistency",
    "default_origin",
    "entries",
    "entry",
    "inclusion",
    "inclusions",
    "item_entries",
    "make_checkpointer",
    "refusals_noted",
    "sealed_details",
    "size",
    "unwatch_refusals",
    "verifier_key",
    "watch_refusals",
]
