"""The master key version every process wraps item keys under, kept in the database.

Issue 16 point 6: a server that loaded the keyring before `tvault keys rotate` used to keep
wrapping new deposits under the version it had loaded, and retiring that version then lost
them. The current version now lives in `key_state`, which every server and worker shares, and is
read in the very transaction that stores a wrapped key:

- PostgreSQL: `SELECT ... FOR SHARE` on the row, so a rotation's `UPDATE` waits for deposits
  in flight to commit, and deposits that start after it read the new version.
- SQLite: the deposit has written its item row before it reads, so it holds the database's
  write lock; the rotation's `UPDATE` waits for it the same way.

A process whose keyring lacks that version re-reads the keyring file; if the file lacks it too
(a keyring copy on another machine not yet replaced) the deposit is refused with a clear error,
never wrapped under an older version. A retired version is never current, so nothing is ever
wrapped under one.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import keys
from keys import KeyringError, KeyStore
from vault.db import ItemKey
from vault.db.key_tables import MASTER, KeyState
from vault.errors import Unavailable

log = logging.getLogger(__name__)


def recorded(session: Session) -> bool:
    """Return whether the vault records a current master key version (read in `session`)."""
    return session.get(KeyState, MASTER) is not None


def record(sessions: sessionmaker[Session], keyring: KeyStore) -> None:
    """Record `keyring`'s current version as the vault's; a version already recorded stays.

    Run when a vault opens and `recorded` says there is none (a vault made before this table
    existed gets its row then). Two processes starting together may both try; the loser's insert
    is simply dropped.
    """
    try:
        with sessions.begin() as session:
            session.add(KeyState(name=MASTER, current_version=keyring.current_version))
    except IntegrityError:
        pass  # another process recorded it first; its value is the same file's


def current(session: Session, *, lock: bool = False) -> int:
    """Return the current master key version, in `session`'s transaction.

    Takes a share lock on PostgreSQL (an exclusive one with `lock`), so the version cannot
    change before the transaction ends. Raises `KeyringError` if the vault has no key state.
    """
    query = select(KeyState.current_version).where(KeyState.name == MASTER)
    version = session.scalar(query.with_for_update(read=not lock))
    if version is None:
        raise KeyringError("the vault records no current master key version (not opened yet)")
    return int(version)


def wrap(session: Session, keyring: KeyStore, identity: str) -> bytes:
    """Wrap `identity` under the version the database names current, in `session`.

    Call it after the transaction has written something (SQLite: the write lock is then held).
    Raises `Unavailable` when this process's keyring file lacks that version (nothing is
    wrapped then: an older version could be retired under the item).
    """
    version = current(session)
    if not keyring.has_version(version):
        # The path is for the operator's log; the client learns only what to ask for.
        log.error(
            "master key version %d is current, but %s lacks it: copy the rotated keyring here",
            version,
            keyring.location,
        )
        raise Unavailable(
            f"master key version {version} is current but this server's keyring file lacks it; "
            "an operator must install the rotated keyring file"
        )
    return keyring.wrap(identity, version)


def advance(session: Session, version: int) -> None:
    """Make `version` current, unless a newer one already is (two rotations at once)."""
    session.execute(
        update(KeyState)
        .where(KeyState.name == MASTER, KeyState.current_version < version)
        .values(current_version=version)
    )


def versions_in_use(session: Session, keyring: KeyStore) -> set[int]:
    """Return the master key versions some stored item key is wrapped under."""
    # The identity inside each key (`keys.item_keys`), whose context is the item id
    # (`vault.item_keys`, which imports this module).
    rows = session.execute(select(ItemKey.item_id, ItemKey.wrapped))
    return {
        keyring.version_of(keys.wrapped_identity(keyring, item_id.encode("ascii"), bytes(w)))
        for item_id, w in rows
    }
