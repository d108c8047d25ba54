"""Remove objects no row references (a crash between upload and commit leaves them)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from vault import tus
from vault.db import Item
from vault.db.jobs_tables import ItemText
from vault.exports import sweep_exports
from vault.extraction import PREFIX as TEXTS_PREFIX
from vault.extraction import being_extracted
from vault.identity import sweep_renditions
from vault.objects import PREFIX, orphans
from vault.parts import Vault

log = logging.getLogger(__name__)


def sweep(vault: Vault) -> int:
    """Delete unreferenced item objects older than `sweep_grace_seconds`; return how many.

    Younger ones may belong to a deposit still streaming (its row commits after the object) and
    are left alone. Item objects (`vault.objects.PREFIX`), redacted renditions and extracted
    texts (`vault.extraction.PREFIX`, left by an attempt killed before its commit) are swept;
    ledger checkpoints are never touched. Built exports past their expiry
    (`TVAULT_EXPORT_TTL_DAYS`) lose their object, as do bags of builds killed before their
    commit (`vault.exports.sweep_exports`). Resumable uploads past their expiry go as well
    (`vault.tus.sweep`).
    """
    cutoff = vault.clock() - timedelta(seconds=vault.settings.sweep_grace_seconds)
    removed = 0
    old = [info for info in vault.store.entries(PREFIX) if info.modified <= cutoff]
    for info in orphans(vault.sessions, Item.object_name, old):
        vault.store.delete(info.name)
        removed += 1
    # Redacted renditions live under their own prefix (vault.identity); same rule.
    removed += sweep_renditions(vault, cutoff)
    # Extracted texts of attempts killed before their commit (vault.extraction); same rule.
    # Not while the item's extract job runs: its batch may not have recorded them yet.
    texts = [info for info in vault.store.entries(TEXTS_PREFIX) if info.modified <= cutoff]
    unnamed = [info.name for info in orphans(vault.sessions, ItemText.object_name, texts)]
    with vault.sessions() as session:
        busy = being_extracted(session, unnamed) if unnamed else set()
    for name in unnamed:
        if name not in busy:
            vault.store.delete(name)
            removed += 1
    # Built exports past their expiry, and bags of builds killed before their commit.
    removed += sweep_exports(vault, cutoff)
    # Resumable uploads past their expiry (vault.tus): sealed segments, removed all the same.
    removed += tus.sweep(vault)
    if removed:
        log.info("sweep removed %d unreferenced objects", removed)
    return removed


class SweepService:
    """Run `sweep` every `sweep_interval_seconds` in a thread beside the API (a `Service`).

    DESIGN.md "Deposit": the sweep runs at start-up (the API's lifespan) and on a schedule, so a
    long-running server also clears what a crashed deposit of another process left behind.
    """

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._interval = vault.settings.sweep_interval_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the schedule (nothing when the interval is 0)."""
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tvault-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                sweep(self._vault)
            except Exception as exc:
                # The type only: messages of storage or database errors are not for this log.
                log.error("scheduled sweep failed: %s", type(exc).__name__)

    def stop(self) -> None:
        """Stop the schedule and wait for a sweep in progress."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
