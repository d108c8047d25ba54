"""Objects no row references: `tvault verify`'s finding "unreferenced object".

A crash between an object's upload and the commit of its row (a deposit, a redacted rendition,
an extraction attempt, an export's build) leaves an object nothing refers to; the sweep
(`vault.sweep`) removes it once it is older than `TVAULT_SWEEP_GRACE_SECONDS`. Verify names
each such object that the sweep should already have removed; younger ones may belong to work
still in progress and are only counted in a note.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from vault.db import Item
from vault.db.access_tables import RedactedRendition
from vault.db.export_tables import Export
from vault.db.jobs_tables import ItemText
from vault.exports import PREFIX as EXPORTS_PREFIX
from vault.extraction import PREFIX as TEXTS_PREFIX
from vault.extraction import being_extracted
from vault.identity import RENDITION_PREFIX
from vault.objects import PREFIX as ITEMS_PREFIX
from vault.objects import orphans
from vault.parts import Vault

UNREFERENCED: Final = "unreferenced object"

# Each prefix of objects that rows refer to, and the column that names them.
REFERENCED_BY: Final[tuple[tuple[str, Any], ...]] = (
    (ITEMS_PREFIX, Item.object_name),
    (RENDITION_PREFIX, RedactedRendition.object_name),
    (TEXTS_PREFIX, ItemText.object_name),
    (EXPORTS_PREFIX, Export.object_name),
)


def check(vault: Vault) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Return the findings `(object name, UNREFERENCED, detail)` for every object under a
    prefix of `REFERENCED_BY` that no row names and that is older than the sweep's grace
    period, and notes (how many younger ones there are). Raises `StorageError` if the store
    cannot be listed."""
    cutoff = vault.clock() - timedelta(seconds=vault.settings.sweep_grace_seconds)
    findings: list[tuple[str, str, str]] = []
    young = 0
    for prefix, column in REFERENCED_BY:
        found = list(orphans(vault.sessions, column, vault.store.entries(prefix)))
        busy: set[str] = set()
        if prefix == TEXTS_PREFIX and found:
            # Texts of a running extraction, sealed but not recorded yet: work in progress.
            with vault.sessions() as session:
                busy = being_extracted(session, [info.name for info in found])
        for info in found:
            if info.modified <= cutoff and info.name not in busy:
                detail = "no row refers to it; the sweep removes it (left by a crash)"
                findings.append((info.name, UNREFERENCED, detail))
            else:
                young += 1
    notes = [f"{young} unreferenced objects younger than the sweep's grace period"] if young else []
    return findings, notes
