"""Remove item objects no item row references (a crash between upload and commit leaves them)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from vault.compose import Vault
from vault.db import Item
from vault.identity import sweep_renditions
from vault.objects import PREFIX

log = logging.getLogger(__name__)


def sweep(vault: Vault) -> int:
    """Delete unreferenced item objects older than `sweep_grace_seconds`; return how many.

    Younger ones may belong to a deposit still streaming (its row commits after the object) and
    are left alone; only names under `vault.objects.PREFIX` are considered, so objects of other
    parts (ledger checkpoints, extracted texts) are never touched.
    """
    cutoff = vault.clock() - timedelta(seconds=vault.settings.sweep_grace_seconds)
    removed = 0
    for info in list(vault.store.entries(PREFIX)):
        if info.modified > cutoff:
            continue
        with vault.sessions() as session:
            if session.scalar(select(Item.id).where(Item.object_name == info.name)) is not None:
                continue
        vault.store.delete(info.name)
        removed += 1
    # Redacted renditions live under their own prefix (vault.identity); same rule.
    removed += sweep_renditions(vault, cutoff)
    if removed:
        log.info("sweep removed %d unreferenced objects", removed)
    return removed
