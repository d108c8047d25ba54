"""The custody ledger: hash-chained entries, an RFC 9162 Merkle tree, signed C2SP checkpoints."""

# Loaded on first use (PEP 562), so that a client command that checks a proof or a note
# (`tvault ledger proof`, `verify --remote`) does not import SQLAlchemy and the tables with it.
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
else:
    # `entry` names both a submodule (entry formats) and `custody.entry` (read one entry); the
    # function is the package's `entry`, as it was when every part loaded eagerly. Load the
    # (light) submodule now and drop the attribute the import set, so that `__getattr__`
    # answers `entry` with the function and a later import of the submodule sets nothing.
    import_module("vault.ledger.entry")
    del globals()["entry"]

_LAZY: dict[str, tuple[str, str | None]] = {
    "Actor": ("vault.ledger.custody", "Actor"),
    "CheckpointService": ("vault.ledger.service", "CheckpointService"),
    "CheckpointStore": ("vault.ledger.ports", "CheckpointStore"),
    "Checkpointer": ("vault.ledger.checkpoints", "Checkpointer"),
    "ConsistencyProof": ("vault.ledger.proofs", "ConsistencyProof"),
    "InclusionProof": ("vault.ledger.proofs", "InclusionProof"),
    "LedgerEntry": ("vault.ledger.entry", "LedgerEntry"),
    "LedgerError": ("vault.ledger.errors", "LedgerError"),
    "LogSigner": ("vault.ledger.ports", "LogSigner"),
    "NoteError": ("vault.ledger.note", "NoteError"),
    "ProofError": ("vault.ledger.errors", "ProofError"),
    "SignedCheckpoint": ("vault.ledger.checkpoints", "SignedCheckpoint"),
    "actions": ("vault.ledger.actions", None),
    "actor_name": ("vault.ledger.custody", "actor_name"),
    "append": ("vault.ledger.custody", "append"),
    "consistency": ("vault.ledger.proofs", "consistency"),
    "default_origin": ("vault.ledger.service", "default_origin"),
    "entries": ("vault.ledger.custody", "entries"),
    "entry": ("vault.ledger.custody", "entry"),
    "inclusion": ("vault.ledger.proofs", "inclusion"),
    "inclusions": ("vault.ledger.proofs", "inclusions"),
    "item_entries": ("vault.ledger.custody", "item_entries"),
    "make_checkpointer": ("vault.ledger.service", "make_checkpointer"),
    "refusals_noted": ("vault.ledger.custody", "refusals_noted"),
    "sealed_details": ("vault.ledger.custody", "sealed_details"),
    "size": ("vault.ledger.custody", "size"),
    "unwatch_refusals": ("vault.ledger.custody", "unwatch_refusals"),
    "verifier_key": ("vault.ledger.note", "verifier_key"),
    "watch_refusals": ("vault.ledger.custody", "watch_refusals"),
}


def __getattr__(name: str) -> Any:
    """Import the part that defines `name` when it is first asked for."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = (
        import_module(module) if attribute is None else getattr(import_module(module), attribute)
    )
    globals()[name] = value
    return value


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
