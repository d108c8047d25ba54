"""Crypto-shredding and legal holds.

DESIGN.md "Keys": crypto-shredding deletes the item's wrapped key, which is the only way to its
age identity; the object, its extracted text, its sealed metadata, identity fields and consent
forms (all sealed to that identity) become unreadable at once. The key deletion and a `deletion`
ledger entry (the tombstone `tvault verify` reads) commit together. Then the ciphertext objects
are deleted where the store allows; an object under S3 object lock remains, unreadable, until its
retention ends. An item under legal hold (set by a custodian, a ledger entry) is never shredded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update

import keys
from policies import Principal, actions
from vault import ledger
from vault.access import authorize
from vault.compose import Vault
from vault.consent import item_resource, load_item
from vault.db import ItemKey
from vault.db.access_tables import ConsentRecord, ItemIdentity, LegalHold, RedactedRendition
from vault.errors import Conflict
from vault.indexing import after_shredding
from vault.storage import ObjectLocked, ObjectNotFound, StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShredResult:
    """What shredding did: the objects deleted, and those the store keeps locked (unreadable)."""

    item_id: str
    deleted: tuple[str, ...]
    locked: tuple[str, ...]


def shred(vault: Vault, principal: Principal, item_id: str) -> ShredResult:
    """Crypto-shred `item_id`: delete its key, record the tombstone, then delete its objects.

    Raises `NotFound`, `Forbidden`, or `Conflict` when the item is under legal hold or already
    shredded (nothing changes then).
    """
    with vault.sessions() as session:
        item = load_item(session, item_id)
    authorize(vault.sessions, principal, actions.ITEM_SHRED, item_resource(item))
    with vault.sessions.begin() as session:
        if session.get(LegalHold, item_id) is not None:
            raise Conflict(f"item {item_id} is under legal hold and cannot be shredded")
        key = session.get(ItemKey, item_id, with_for_update=True)
        if key is None:
            raise Conflict(f"item {item_id} is already crypto-shredded")
        objects = [item.object_name]
        rendition = session.get(RedactedRendition, item_id)
        if rendition is not None:
            objects.append(rendition.object_name)
            session.delete(rendition)
        identity = session.get(ItemIdentity, item_id)
        if identity is not None:
            session.delete(identity)
        session.execute(
            update(ConsentRecord).where(ConsentRecord.item_id == item_id).values(sealed_form=None)
        )
        session.delete(key)
        ledger.append(
            session,
            actor=principal.subject,
            action=ledger.actions.DELETION,
            item_id=item_id,
            case_id=item.case_id,
            details={"reason": "crypto-shredding", "objects": len(objects)},
            now=vault.clock(),
        )
    deleted, locked = [], []
    for name in objects:
        try:
            vault.store.delete(name)
            deleted.append(name)
        except ObjectNotFound:
            deleted.append(name)
        except ObjectLocked:
            locked.append(name)  # retention holds it; without its key it is noise
        except StorageError as exc:
            # The shredding stands (the key is gone); the sweep or an operator removes it later.
            log.warning("shredded item's object not deleted: %s", type(exc).__name__)
            locked.append(name)
    keys.forget_identities()  # no parsed copy of the destroyed key stays in this process
    after_shredding(vault, item_id)  # its words and digests leave the index
    return ShredResult(item_id, tuple(deleted), tuple(locked))


def set_hold(vault: Vault, principal: Principal, item_id: str, held: bool) -> bool:
    """Set (`held`) or lift the legal hold on `item_id`; return whether anything changed.

    Raises `NotFound` or `Forbidden`. Each change is a `legal hold` ledger entry.
    """
    with vault.sessions() as session:
        item = load_item(session, item_id)
    authorize(vault.sessions, principal, actions.ITEM_HOLD, item_resource(item))
    now = vault.clock()
    with vault.sessions.begin() as session:
        row = session.get(LegalHold, item_id, with_for_update=True)
        if (row is not None) == held:
            return False
        if held:
            session.add(LegalHold(item_id=item_id, set_by=principal.subject, set_at=now))
        else:
            session.delete(row)
        ledger.append(
            session,
            actor=principal.subject,
            action=ledger.actions.LEGAL_HOLD,
            item_id=item_id,
            case_id=item.case_id,
            details={"held": held},
            now=now,
        )
        return True


def is_held(vault: Vault, item_id: str) -> bool:
    """Return whether `item_id` is under legal hold."""
    with vault.sessions() as session:
        return (
            session.scalar(select(LegalHold.item_id).where(LegalHold.item_id == item_id))
            is not None
        )
