"""Keyed MACs that bind the ledger to a key the database never holds.

The hash chain, the tree and the signed checkpoints show a change to anyone who recomputes them,
unless the forger recomputes them too: someone holding the database and the object store (not
the passphrase) could delete the checkpoints, edit an entry and redo every SHA-256 after it, or
edit or drop the entries after the last checkpoint. So every entry also carries
HMAC-SHA-256 under the ledger key (`SECRET`, a named secret sealed in the keyring) of its chain
hash, and the two rows of `ledger_state` carry one of what they say (the head: size and last
hash; the checkpoint row: size, root and how many checkpoints were signed). The chain hash covers
every earlier entry, so a valid MAC on entry N vouches for the whole history up to N.

The key reaches `vault.ledger.append` and the checkpointer through the session: the composition
root binds it to the session factory (`bind`); a session without it cannot append (fail closed).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final, Protocol, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from vault.ledger.errors import LedgerError
from vault.ledger.tables import CHECKPOINT, HEAD, CheckpointRow, LedgerRow, LedgerState

SECRET: Final = "ledger-mac"  # noqa: S105 (a name, not a secret)
_INFO: Final = "tvault.ledger_mac_key"
_ENTRIES = cast(Table, LedgerRow.__table__)
_STATE = cast(Table, LedgerState.__table__)
_CHECKPOINTS = cast(Table, CheckpointRow.__table__)
_BATCH: Final = 5000

# Domain separation: a MAC made for one kind of record can never be passed off as another's.
_ENTRY: Final = b"testimony-vault ledger entry\x00"
_HEAD: Final = b"testimony-vault ledger head\x00"
_CHECKPOINT: Final = b"testimony-vault ledger checkpoint\x00"


def entry_mac(key: bytes, entry_hash: bytes) -> bytes:
    """Return the MAC of an entry: HMAC-SHA-256(key, domain || its 32-byte chain hash)."""
    return hmac.digest(key, _ENTRY + entry_hash, "sha256")


def head_mac(key: bytes, size: int, last_hash: bytes) -> bytes:
    """Return the MAC of the head row: the ledger's size and its last entry's chain hash."""
    return hmac.digest(key, _HEAD + size.to_bytes(8, "big") + last_hash, "sha256")


def checkpoint_mac(key: bytes, size: int, root: bytes, count: int) -> bytes:
    """Return the MAC of the checkpoint row: newest size, its root, number of checkpoints."""
    message = _CHECKPOINT + size.to_bytes(8, "big") + root + count.to_bytes(8, "big")
    return hmac.digest(key, message, "sha256")


def same(stored: bytes | None, expected: bytes) -> bool:
    """Compare a stored MAC with the expected one in constant time (a missing MAC is wrong)."""
    return stored is not None and hmac.compare_digest(bytes(stored), expected)


def bind(sessions: sessionmaker[Session], key: bytes) -> None:
    """Give every session of `sessions` the ledger key, so appends and checkpoints carry MACs."""
    sessions.configure(info={_INFO: key})


def key_of(session: Session) -> bytes:
    """Return the ledger key bound to `session`. Raises `LedgerError` if none is (fail closed)."""
    key = session.info.get(_INFO)
    if not isinstance(key, bytes):
        raise LedgerError("no ledger MAC key is bound to this session (open the vault first)")
    return key


class SecretStore(Protocol):
    """Where the ledger key is kept: the vault's `keys.KeyStore` fits."""

    def has_secret(self, name: str) -> bool:
        """Return whether a secret named `name` is kept."""
        ...

    def secret(self, name: str) -> bytes:
        """Return the secret `name`."""
        ...

    def set_secret(self, name: str, value: bytes) -> None:
        """Keep `value` as the secret `name`."""
        ...


def ensure_key(keyring: SecretStore, sessions: sessionmaker[Session]) -> bytes:
    """Bind the ledger key of `keyring` to `sessions` and return it; make it on first open.

    A new vault gets its key before its first entry. A vault made before the ledger had MACs
    gets one on its first open with the passphrase, and its history is MACed then (`upgrade`).
    Once the keyring holds the key, a missing MAC is never computed again: it stays a finding of
    `tvault verify`, so blanking MACs in the database cannot launder a rewritten entry.
    """
    if keyring.has_secret(SECRET):
        key = keyring.secret(SECRET)
    else:
        key = secrets.token_bytes(32)
        with sessions.begin() as session:
            upgrade(session, key)
            # Kept before the commit: a crash in between leaves a key without MACs (reported
            # by `tvault verify`), never MACs under a key that was lost.
            keyring.set_secret(SECRET, key)
    bind(sessions, key)
    return key


def upgrade(session: Session, key: bytes) -> None:
    """MAC every entry that has no MAC, and both state rows, with the new ledger `key`.

    For a vault made before the ledger had MACs: run once, in `session`'s transaction, when the
    keyring has no ledger key yet (`vault.compose.build` calls it on the first open with the
    passphrase). It MACs the history **as it stands**: entries up to the newest signed checkpoint
    stay protected by its signature (`tvault verify` still rebuilds that root), the ones after it
    are trusted as they are. Only MACs that are missing are written (the append-only triggers
    allow setting a missing MAC, nothing else). Takes the head row's lock first, so no append
    runs meanwhile.

    Raises `LedgerError` if any MAC is already there: the ledger was MACed under a key this
    keyring lacks (a keyring older than the database), and a new key must not bless it.
    """
    head = session.execute(
        update(_STATE)
        .where(_STATE.c.name == HEAD)
        .values(size=_STATE.c.size)
        .returning(_STATE.c.size, _STATE.c.hash)
    ).one()
    for table in (_ENTRIES, _STATE):
        if session.execute(select(table.c.mac).where(table.c.mac.is_not(None)).limit(1)).first():
            raise LedgerError(
                "the ledger has MACs but the keyring holds no ledger key: the keyring is older "
                "than the database; open the vault with its current keyring"
            )
    position = -1
    while True:
        batch = session.execute(
            select(_ENTRIES.c.seq, _ENTRIES.c.entry_hash)
            .where(_ENTRIES.c.seq > position, _ENTRIES.c.mac.is_(None))
            .order_by(_ENTRIES.c.seq)
            .limit(_BATCH)
        ).all()
        if not batch:
            break
        session.execute(
            update(_ENTRIES).where(_ENTRIES.c.seq == bindparam("s")).values(mac=bindparam("m")),
            [{"s": seq, "m": entry_mac(key, bytes(digest))} for seq, digest in batch],
        )
        position = int(batch[-1].seq)
    session.execute(
        update(_STATE)
        .where(_STATE.c.name == HEAD)
        .values(mac=head_mac(key, int(head.size), bytes(head.hash)))
    )
    state = session.execute(select(_STATE).where(_STATE.c.name == CHECKPOINT)).one()
    count = checkpoint_count(session)
    session.execute(
        update(_STATE)
        .where(_STATE.c.name == CHECKPOINT)
        .values(mac=checkpoint_mac(key, int(state.size), bytes(state.hash), count))
    )


def checkpoint_count(session: Session) -> int:
    """Return how many checkpoints `ledger_checkpoints` records."""
    return int(session.execute(select(func.count()).select_from(_CHECKPOINTS)).scalar_one())
