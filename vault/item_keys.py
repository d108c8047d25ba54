"""Item keys in the database: stored under the current KEK epoch, opened, moved on a shred.

`keys.item_keys` has the format and why: every item identity is sealed under a per-item KEK,
every KEK under the key of one epoch (a keyring secret). Here lives what the database adds:
which epoch is current (`kek_epochs`), and the order of the steps that make a shred final in
old database copies too (`vault.shred`):

1. `begin_epoch` adds a new epoch key to the keyring (before the transaction: a keyring write);
2. in the shred's transaction, after its ledger entry (which takes the writers' lock, so no
   deposit sealing under the old epoch can commit after it), `move_to` marks the old epoch
   retired, the new one current, and moves every remaining KEK to it;
3. after the commit, `forget_retired` deletes the retired epochs' keys from the keyring, then
   their rows. A crash before that leaves the rows; the next shred finishes the job.

A deposit calls `store` in its transaction after its ledger entry, so it reads the epoch that
is current when it commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

import keys
from vault import keystate
from vault.db import ItemKey
from vault.db.key_tables import CURRENT, RETIRED, KekEpoch
from vault.ledger.tables import HEAD, LedgerState
from vault.parts import Vault


def _context(item_id: str) -> bytes:
    return item_id.encode("ascii")


def open_identity(keyring: keys.KeyStore, item_id: str, wrapped: bytes) -> str:
    """Return the age identity of `item_id` from its stored `wrapped` key.

    Raises `keys.KeyringError` if it does not open: altered, another item's, or sealed under an
    epoch whose key was destroyed by a later shred (an old database copy).
    """
    return keys.open_item(keyring, _context(item_id), bytes(wrapped))


def master_wrapped(keyring: keys.KeyStore, item_id: str, wrapped: bytes) -> bytes:
    """Return the master-wrapped identity inside `wrapped` (for its master key version)."""
    return keys.wrapped_identity(keyring, _context(item_id), bytes(wrapped))


def rewrap(
    keyring: keys.KeyStore, item_id: str, wrapped: bytes, version: int | None = None
) -> bytes:
    """Return `wrapped` re-wrapped to master key `version` (key rotation)."""
    return keys.rewrap_item(keyring, _context(item_id), bytes(wrapped), version)


def lock_writers(session: Session) -> None:
    """Take the writers' lock in `session`'s transaction: the ledger head row, which every
    deposit and shred updates first (a row lock on PostgreSQL, the write lock on SQLite)."""
    session.execute(
        update(LedgerState).where(LedgerState.name == HEAD).values(size=LedgerState.size)
    )


def _current(vault: Vault, session: Session, now: datetime) -> str:
    epoch = session.scalar(select(KekEpoch.epoch).where(KekEpoch.state == CURRENT))
    if epoch is None:  # the vault's first deposit since revision 0010
        epoch = begin_epoch(vault)
        session.add(KekEpoch(epoch=epoch, state=CURRENT, created_at=now))
    return epoch


def store(vault: Vault, session: Session, item_id: str, identity: str) -> None:
    """Add the key row of `item_id` to `session`, sealed under the current epoch.

    Call after the transaction's ledger entry (see the module docstring). Raises
    `keys.KeyringError` if the current epoch's key is not in the keyring, `Unavailable` if the
    current master key version is not (`vault.keystate.wrap`).
    """
    inner = keystate.wrap(session, vault.keyring, identity)  # the master version the DB names
    epoch = _current(vault, session, vault.clock())
    wrapped = keys.seal_item(vault.keyring, _context(item_id), inner, epoch)
    session.add(ItemKey(item_id=item_id, wrapped=wrapped))


def begin_epoch(vault: Vault) -> str:
    """Add a new epoch key to the keyring and return the epoch (not current until `move_to`)."""
    return keys.new_epoch(vault.keyring)


def move_to(vault: Vault, session: Session, epoch: str) -> int:
    """Make `epoch` current in `session` and move every item key's KEK to it; return how many.

    Call inside the shred's transaction after its ledger entry. Raises `keys.KeyringError` if
    a key does not open (nothing commits then: the shred fails whole).
    """
    session.flush()  # the shredded item's key row is deleted before the others are read
    session.execute(update(KekEpoch).where(KekEpoch.state == CURRENT).values(state=RETIRED))
    session.add(KekEpoch(epoch=epoch, state=CURRENT, created_at=vault.clock()))
    rows = session.execute(select(ItemKey.item_id, ItemKey.wrapped)).all()
    moved: list[dict[str, Any]] = [
        {
            "item_id": item_id,
            "wrapped": keys.move_item(vault.keyring, _context(item_id), bytes(wrapped), epoch),
        }
        for item_id, wrapped in rows
    ]
    if moved:
        session.execute(update(ItemKey), moved)  # one UPDATE by primary key, many parameters
    return len(moved)


def lingering(vault: Vault, session: Session) -> list[str]:
    """Return the retired epochs whose key is still in the keyring (a shred interrupted after
    its commit): until the next shred deletes them, old database copies still open."""
    retired = session.scalars(select(KekEpoch.epoch).where(KekEpoch.state == RETIRED))
    return [e for e in retired if vault.keyring.has_secret(keys.EPOCH_SECRET + e)]


def forget_retired(vault: Vault) -> list[str]:
    """Delete the retired epochs' keys from the keyring, then their rows; return them.

    **After this, every database copy that predates the move opens none of its item keys.**
    """
    with vault.sessions() as session:
        retired = list(session.scalars(select(KekEpoch.epoch).where(KekEpoch.state == RETIRED)))
    for epoch in retired:
        keys.forget_epoch(vault.keyring, epoch)
    if retired:
        with vault.sessions.begin() as session:
            session.execute(delete(KekEpoch).where(KekEpoch.epoch.in_(retired)))
    return retired
