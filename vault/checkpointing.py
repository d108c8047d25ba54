"""Build the ledger's checkpointer from a composed `Vault` (keyring, sessions, store, settings)."""

from __future__ import annotations

import keys
from vault.ledger.checkpoints import Checkpointer
from vault.ledger.service import DEFAULT_EVERY_ENTRIES, DEFAULT_EVERY_SECONDS, make_checkpointer
from vault.parts import LOG_SIGNING, Vault


def checkpointer_of(vault: Vault) -> Checkpointer:
    """Return the checkpointer of `vault`, signing with the keyring's log key.

    Raises `keys.KeyringError` if the keyring holds no log key.
    """
    settings = vault.settings
    return make_checkpointer(
        vault.sessions,
        signer=keys.LogSigner.from_bytes(vault.keyring.secret(LOG_SIGNING)),
        store=vault.store,
        # Optional settings (TVAULT_LEDGER_ORIGIN, TVAULT_LEDGER_CHECKPOINT_ENTRIES,
        # TVAULT_LEDGER_CHECKPOINT_SECONDS); the defaults apply while Settings lacks them.
        origin=getattr(settings, "ledger_origin", None),
        every_entries=getattr(settings, "ledger_checkpoint_entries", None) or DEFAULT_EVERY_ENTRIES,
        every_seconds=getattr(settings, "ledger_checkpoint_seconds", None) or DEFAULT_EVERY_SECONDS,
    )
