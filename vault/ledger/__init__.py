"""The custody ledger: hash-chained entries, an RFC 9162 Merkle tree, signed C2SP checkpoints."""

from vault.ledger import actions
from vault.ledger.custody import append, entries, entry, sealed_details, size
from vault.ledger.entry import LedgerEntry
from vault.ledger.errors import LedgerError, ProofError

__all__ = [
    "LedgerEntry",
    "LedgerError",
    "ProofError",
    "actions",
    "append",
    "entries",
    "entry",
    "sealed_details",
    "size",
]
