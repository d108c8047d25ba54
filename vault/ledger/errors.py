"""The errors of the custody ledger."""

from __future__ import annotations


class LedgerError(Exception):
    """A ledger operation was refused or found the ledger inconsistent; the message says why."""


class ProofError(LedgerError):
    """A proof cannot be built or does not verify (bad index or size, hashes that disagree)."""
