"""Crypto-shredding and legal holds.

DESIGN.md "Keys": crypto-shredding deletes the item's wrapped key, which is the only way to its
age identity; the object, its extracted text, its sealed metadata, identity fields and consent
forms (all sealed to that identity) become unreadable at once, and their rows are deleted or
blanked. The key deletion and a `deletion` ledger entry (the tombstone `tvault verify` reads)
commit together, with every other item's KEK moved to a new epoch (`vault.item_keys`); then the
old epoch's key leaves the keyring, so a database backup from before the shred opens nothing,
and SQLite's write-ahead log is truncated, so no page image keeps the deleted key. Then the
ciphertext objects are deleted where the store allows; an object under S3 object lock remains,
unreadable, until its retention ends. An item under legal hold (set by a custodian, a ledger
entry) is never shredded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

import keys
from policies import Principal, Resource, actions, decide, kinds
from vault import item_keys, ledger
from vault.access import audited, authorize, authorize_case, item_resource
from vault.db import Item, ItemKey
from vault.db.access_tables import ConsentRecord, ItemIdentity, LegalHold, RedactedRendition
from vault.db.jobs_tables import ItemText
from vault.db.session import purge_freed_pages
from vault.db.signature_tables import ItemSignature
from vault.errors import BadField, Conflict
from vault.indexing import after_shredding
from vault.parts import METADATA_IDENTITY, Vault
from vault.sealing import seal_json
from vault.storage import ObjectLocked, ObjectNotFound, StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShredResult:
    """What shredding did: every object made unreadable (`unreadable`: the original, its text,
    its rendition), of those the ones deleted and the ones the store keeps locked (unreadable),
    the sealed fields destroyed in the database, and whether SQLite's freed pages were purged
    from its write-ahead log (always True on PostgreSQL, where docs/keys.md says what holds)."""

    item_id: str
    deleted: tuple[str, ...]
    locked: tuple[str, ...]
    unreadable: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    purged: bool = True


def shred(vault: Vault, principal: Principal, item_id: str) -> ShredResult:
    """Crypto-shred `item_id`: delete its key and every sealed thing of it, record the
    tombstone, purge the freed pages, then delete its objects.

    Raises `NotFound`, `Forbidden`, or `Conflict` when the item is under legal hold or already
    shredded (nothing changes then).
    """
    with audited(
        vault,
        principal,
        actions.ITEM_SHRED,
        item_id,
        entry=ledger.actions.DELETION,
        details={"reason": "crypto-shredding"},
    ) as audit:
        # Keyring writes, before the block touches its transaction.
        item_keys.forget_retired(vault)  # finish an earlier shred a crash interrupted
        epoch = item_keys.begin_epoch(vault)
        session = audit.session
        if session.get(LegalHold, item_id) is not None:
            raise Conflict(f"item {item_id} is under legal hold and cannot be shredded")
        key = session.get(ItemKey, item_id, with_for_update=True)
        if key is None:
            raise Conflict(f"item {item_id} is already crypto-shredded")
        objects, fields = _destroy_sealed(session, item_id)
        objects.insert(0, audit.item.object_name)
        session.delete(key)
        audit.record(objects=len(objects), fields=fields)
        # After the entry (the writers' lock): every other item's KEK moves to the new epoch,
        # so the old epoch's key, deleted below, opens nothing any database copy still holds.
        item_keys.move_to(vault, session, epoch)
    item_keys.forget_retired(vault)
    # Its words and digests leave the index, and the vocabulary's old rows the database, before
    # the freed pages are purged.
    after_shredding(vault, item_id)
    purged = purge_freed_pages(vault.engine)
    if not purged:
        log.warning("shredded item's freed pages are still in the write-ahead log")
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
    return ShredResult(
        item_id, tuple(deleted), tuple(locked), tuple(objects), tuple(fields), purged
    )


def _destroy_sealed(session: Session, item_id: str) -> tuple[list[str], list[str]]:
    """Delete or blank, in `session`, every row or field sealed to the item's identity; return
    the objects they name and the fields destroyed. Sealed, they would be unreadable anyway:
    removing them leaves nothing for a later break of age or a leaked key to open."""
    objects: list[str] = []
    fields: list[str] = []
    text = session.get(ItemText, item_id)
    rendition = session.get(RedactedRendition, item_id)
    identity = session.get(ItemIdentity, item_id)
    for row in (text, rendition, identity):
        if row is not None:
            if not isinstance(row, ItemIdentity):
                objects.append(row.object_name)
            session.delete(row)
            fields.append(row.__tablename__)
    blanked: list[tuple[str, Any]] = [
        ("items.sealed_meta", update(Item).where(Item.id == item_id).values(sealed_meta=b"")),
        (
            "consent_records.sealed_form",
            update(ConsentRecord)
            .where(ConsentRecord.item_id == item_id, ConsentRecord.sealed_form.is_not(None))
            .values(sealed_form=None),
        ),
        (
            "item_signatures.sealed_statement",
            update(ItemSignature)
            .where(ItemSignature.item_id == item_id)
            .values(sealed_statement=b""),
        ),
    ]
    for name, statement in blanked:
        if cast(CursorResult[Any], session.execute(statement)).rowcount:
            fields.append(name)
    return objects, fields


MAX_HOLD_REASON = 2000


@dataclass(frozen=True)
class HoldView:
    """An item under legal hold: who set the hold, and when (the reason stays sealed)."""

    item_id: str
    set_by: str
    set_at: datetime


def set_hold(
    vault: Vault, principal: Principal, item_id: str, held: bool, reason: str | None = None
) -> bool:
    """Set (`held`) or lift the legal hold on `item_id`; return whether anything changed.

    `reason` (free text: a court order may name a survivor) is sealed into the ledger entry.
    Raises `BadField` (reason), `NotFound` or `Forbidden`. Each change is a `legal hold` ledger
    entry.
    """
    sealed = _sealed_reason(vault, reason) if reason is not None else None
    return _set_hold(vault, principal, item_id, held, sealed) == _CHANGED


_CHANGED, _UNCHANGED, _SHREDDED = "changed", "unchanged", "shredded"


def _sealed_reason(vault: Vault, reason: str) -> bytes:
    if not reason.strip() or len(reason) > MAX_HOLD_REASON or "\x00" in reason:
        raise BadField("reason", f"1 to {MAX_HOLD_REASON} characters")
    identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    return seal_json({"reason": reason}, keys.recipient_of(identity))


def _set_hold(
    vault: Vault,
    principal: Principal,
    item_id: str,
    held: bool,
    sealed: bytes | None,
    *,
    live_only: bool = False,
) -> str:
    # The one path of a hold's change: authorised on the item, recorded with it. `live_only`
    # leaves a crypto-shredded item as it is (a case's hold has nothing to protect there).
    with audited(
        vault,
        principal,
        actions.ITEM_HOLD,
        item_id,
        entry=ledger.actions.LEGAL_HOLD,
        details={"held": held},
    ) as audit:
        session, audit.sealed = audit.session, sealed
        row = session.get(LegalHold, item_id, with_for_update=True)
        if (row is not None) == held:
            audit.skip()  # nothing changes, nothing to record
            return _UNCHANGED
        if live_only and session.get(ItemKey, item_id) is None:
            audit.skip()
            return _SHREDDED
        if held:
            session.add(LegalHold(item_id=item_id, set_by=principal.subject, set_at=audit.now))
        else:
            session.delete(row)
        return _CHANGED


@dataclass(frozen=True)
class CaseHold:
    """What holding a whole case did: the items put under hold now (`held`, ids), those under
    hold before (`already`), the crypto-shredded ones left alone (`shredded`)."""

    case_id: str
    held: tuple[str, ...]
    already: int
    shredded: int


def hold_case(vault: Vault, principal: Principal, case_id: str, reason: str) -> CaseHold:
    """Put every item of case `case_id` under legal hold, with one `reason` (sealed).

    Each item is held through the single hold's path (`set_hold`: its decision, its `legal
    hold` entry with the reason sealed), in its own transaction; items under hold already and
    crypto-shredded ones are skipped, with no entry. Only the items in the case now: one
    deposited later is not held (docs/web.md "Legal holds"). The policy is asked first for the
    case, then for every item, before anything is held: a refusal (its `access denied` entry)
    holds nothing. Raises `BadField` (reason), `NotFound`, `Forbidden`.
    """
    sealed = _sealed_reason(vault, reason)
    authorize_case(
        vault.sessions, principal, actions.ITEM_HOLD, Resource(kind=kinds.ITEM, case_id=case_id)
    )
    with vault.sessions() as session:
        rows = session.execute(
            select(
                Item.id,
                Item.case_id,
                Item.depositor,
                Item.consent,
                LegalHold.item_id.label("hold"),
                ItemKey.item_id.label("key"),
            )
            .outerjoin(LegalHold, LegalHold.item_id == Item.id)
            .outerjoin(ItemKey, ItemKey.item_id == Item.id)
            .where(Item.case_id == case_id)
            .order_by(Item.id)
        ).all()
    for row in rows:
        authorize(vault.sessions, principal, actions.ITEM_HOLD, item_resource(row))
    held, already, shredded = [], sum(row.hold is not None for row in rows), 0
    for row in rows:
        if row.hold is not None:
            continue
        if row.key is None:
            shredded += 1
            continue
        outcome = _set_hold(vault, principal, row.id, True, sealed, live_only=True)
        if outcome == _CHANGED:
            held.append(row.id)
        elif outcome == _SHREDDED:  # shredded since the list was read
            shredded += 1
        else:  # held since the list was read
            already += 1
    return CaseHold(case_id, tuple(held), already, shredded)


def is_held(vault: Vault, item_id: str) -> bool:
    """Return whether `item_id` is under legal hold."""
    with vault.sessions() as session:
        return (
            session.scalar(select(LegalHold.item_id).where(LegalHold.item_id == item_id))
            is not None
        )


def list_holds(vault: Vault, principal: Principal) -> list[HoldView]:
    """Return the items under legal hold that `principal` may hold or lift, newest first.

    Raises `Forbidden` (after its `access denied` entry) unless the policy lets `principal`
    set holds at all.
    """
    authorize(vault.sessions, principal, actions.ITEM_HOLD, Resource(kind=kinds.ITEM))
    with vault.sessions() as session:
        rows = session.execute(
            select(LegalHold, Item.id, Item.case_id, Item.depositor, Item.consent)
            .join(Item, Item.id == LegalHold.item_id)
            .order_by(LegalHold.set_at.desc(), LegalHold.item_id)
        ).all()
    return [
        HoldView(row.LegalHold.item_id, row.LegalHold.set_by, row.LegalHold.set_at)
        for row in rows
        if decide(principal, actions.ITEM_HOLD, item_resource(row))
    ]
