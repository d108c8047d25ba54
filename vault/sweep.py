"""Remove item objects no item row references (a crash between upload and commit leaves them)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from vault.compose import Vault
from vault.db import Item
from vault.objects import PREFIX, created_at

log = logging.getLogger(__name__)


def sweep(vault: Vault) -> int:
    """Delete unreferenced item objects older than `sweep_grace_seconds`; return how many.

    Younger ones may belong to a deposit still streaming and are left alone.
    """
    cutoff = vault.clock() - timedelta(seconds=vault.settings.sweep_grace_seconds)
    removed = 0
    for name in list(vault.store.names(PREFIX)):
        made = created_at(name)
        if made is None or made > cutoff:
            continue
        with vault.sessions() as session:
            if session.scalar(select(Item.id).where(Item.object_name == name)) is not None:
                continue
        vault.store.delete(name)
        removed += 1
    if removed:
        log.info("sweep removed %d unreferenced objects", removed)
    return removed
