"""The checkpointing service the server runs: signs a checkpoint every N entries or T seconds."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from vault.ledger.checkpoints import Checkpointer
from vault.ledger.errors import LedgerError
from vault.ledger.ports import CheckpointStore, LogSigner

log = logging.getLogger(__name__)

DEFAULT_EVERY_ENTRIES: Final = 1000
DEFAULT_EVERY_SECONDS: Final = 60.0


def default_origin(public_key: bytes) -> str:
    """Return the origin of a log without a configured one: `testimony-vault/<key digest>`.

    Stable for as long as the log key is, and unique per vault (C2SP tlog-checkpoint asks for a
    unique origin; it need not be a reachable URL).
    """
    return f"testimony-vault/{hashlib.sha256(public_key).hexdigest()[:16]}"


def make_checkpointer(
    sessions: sessionmaker[Session],
    *,
    signer: LogSigner,
    store: CheckpointStore,
    origin: str | None = None,
    every_entries: int = DEFAULT_EVERY_ENTRIES,
    every_seconds: float = DEFAULT_EVERY_SECONDS,
) -> Checkpointer:
    """Build the vault's `Checkpointer`; `origin` defaults to `default_origin` of the key."""
    return Checkpointer(
        sessions,
        signer=signer,
        store=store,
        origin=origin or default_origin(signer.public_key_bytes()),
        every_entries=every_entries,
        every_seconds=every_seconds,
    )


class CheckpointService:
    """Runs `Checkpointer.checkpoint_if_due` in a thread (the composition root's `Service`)."""

    def __init__(self, checkpointer: Checkpointer, poll_seconds: float = 1.0) -> None:
        self.checkpointer = checkpointer
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def start(self) -> None:
        """Start the thread; return at once."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current checkpoint, if any, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.checkpointer.checkpoint_if_due()
            except LedgerError as exc:
                # A ledger that cannot be checkpointed is tampered with or broken: say so once
                # per distinct reason (the messages name sequence numbers, never content), and
                # keep refusing to sign until an operator looks (`tvault verify`).
                if str(exc) != self._last_error:
                    self._last_error = str(exc)
                    log.error("ledger checkpoint refused: %s", exc)
            except Exception as exc:  # the database or store is down: retry next poll
                log.warning("ledger checkpoint failed: %s", type(exc).__name__)
