"""Master key rotation: a new keyring version, every item key re-wrapped to it (docs/keys.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from policies import Resource, actions, kinds
from vault import item_keys, keystate, ledger
from vault.access import authorize
from vault.accounts import find_user, principal_of
from vault.approval_kinds import request_key_retirement
from vault.db import ItemKey
from vault.parts import Vault


@dataclass(frozen=True)
class Rotation:
    """What `rotate` did: the new master key version, item keys re-wrapped, and the approval
    asked for to retire the older versions (None: not asked, or nothing to retire)."""

    version: int
    previous: int
    rewrapped: int
    approval: str | None = None


def rotate(vault: Vault, actor: str, *, batch: int = 500, retire: bool = False) -> Rotation:
    """Rotate the keyring's master key and re-wrap every item key to it, `batch` per transaction.

    `actor` must be an account the policy allows `key.manage`. Safe while servers and workers
    run: the new version is made current in the database, which every process reads before it
    wraps a key (`vault.keystate`). Appends a `key rotation` ledger entry. With `retire`, asks
    for the retirement of the older versions no item key uses any more: it happens once another
    custodian approves (`tvault approvals approve ID`, DESIGN.md promise 10). Raises
    `Forbidden`, `NotFound` (no such account), `Conflict` or `keys.KeyringError`.
    """
    with vault.sessions() as session:
        principal = principal_of(session, find_user(session, actor))
    authorize(vault.sessions, principal, actions.KEY_MANAGE, Resource(kind=kinds.KEY))
    keyring = vault.keyring
    with vault.sessions() as session:
        previous = keystate.current(session)
    # The file first, then the database: a process told the new version re-reads the file.
    version = keyring.rotate()
    with vault.sessions.begin() as session:
        keystate.advance(session, version)
    rewrapped, last = 0, ""
    while True:
        # One transaction per batch: a crash leaves some keys on the old version, which stays
        # in the ring and still unwraps them; running `rotate` again finishes the job.
        with vault.sessions.begin() as session:
            # A shred moving every KEK to a new epoch must not interleave with this batch.
            item_keys.lock_writers(session)
            target = keystate.current(session)  # a later rotation elsewhere wins
            rows = session.execute(
                select(ItemKey.item_id, ItemKey.wrapped)
                .where(ItemKey.item_id > last)
                .order_by(ItemKey.item_id)
                .limit(batch)
            ).all()
            if not rows:
                break
            for item_id, wrapped in rows:
                old = bytes(wrapped)
                inner = item_keys.master_wrapped(keyring, item_id, old)
                if keyring.version_of(inner) != target:
                    # Compare and swap: a key shredded meanwhile by another process stays gone.
                    session.execute(
                        update(ItemKey)
                        .where(ItemKey.item_id == item_id, ItemKey.wrapped == old)
                        .values(wrapped=item_keys.rewrap(keyring, item_id, old, target))
                    )
                    rewrapped += 1
            last = rows[-1].item_id
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=actor,
            action=ledger.actions.KEY_ROTATION,
            details={"version": version, "previous": previous, "rewrapped": rewrapped},
        )
    asked = request_key_retirement(vault, principal) if retire else None
    return Rotation(version, previous, rewrapped, asked.id if asked else None)
