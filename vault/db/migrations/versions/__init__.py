"""Alembic revisions with fixed ids (docs/INTERFACES.md): 0001_core, 0002_ledger, ..."""
