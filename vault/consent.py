"""Consent: each item's consent scopes, their versions over time, and the sealed consent form.

DESIGN.md promise 5: every action checks the scopes it needs, from `Item.consent` as the
database holds it at that request, so a withdrawal takes effect on the next request. Each change
is a new `ConsentRecord` version and a `consent change` ledger entry, committed together.
Version 1 is the consent given at deposit; it is written the first time the record is asked for
or changed, from the item row, which holds it until then.

Consent changes only within the survivor's wishes (issue 16): the one who records a change must
see the item, and name the change's basis, `consent_form` (the signed form comes with it; its
SHA-256 goes into the ledger entry) or `depositor_confirmation` (the depositing therapist
confirms the survivor asked; no one else may). A free-text note goes into the entry sealed to the
item's own key, so it is destroyed with the item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import keys
from policies import Principal, actions
from vault import item_keys, ledger
from vault.access import audited, authorize, authorize_item, item_resource, refuse
from vault.db import Item, ItemKey
from vault.db.access_tables import ConsentRecord
from vault.domain import CONSENT_SCOPES
from vault.errors import BadField, Conflict, NotFound
from vault.indexing import after_consent_change
from vault.parts import Vault
from vault.sealing import seal_json

MAX_FORM_BYTES = 16 * 1024 * 1024  # a scanned, signed consent form; kept in the database
MAX_NOTE = 2000
CONSENT_FORM = "consent_form"
DEPOSITOR_CONFIRMATION = "depositor_confirmation"
BASES = (CONSENT_FORM, DEPOSITOR_CONFIRMATION)


@dataclass(frozen=True)
class ConsentVersion:
    """One version of an item's consent record."""

    version: int
    scopes: tuple[str, ...]
    recorded_by: str
    recorded_at: datetime
    has_form: bool


def load_item(session: Session, item_id: str) -> Item:
    """Return the item `item_id`. Raises `NotFound` with the words used for every unknown id."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    return item


def item_identity(vault: Vault, session: Session, item_id: str) -> str:
    """Return the unwrapped age identity of `item_id`. Raises `Conflict` once it is shredded."""
    key = session.get(ItemKey, item_id)
    if key is None:
        raise Conflict(f"item {item_id} is crypto-shredded")
    return item_keys.open_identity(vault.keyring, item_id, key.wrapped)


def _scopes(raw: Collection[str], name: str) -> frozenset[str]:
    scopes = frozenset(raw)
    unknown = scopes - set(CONSENT_SCOPES)
    if unknown:
        raise BadField(name, f"unknown scope(s); use {', '.join(CONSENT_SCOPES)}")
    return scopes


def _records(session: Session, item: Item) -> list[ConsentRecord]:
    rows = list(
        session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.item_id == item.id)
            .order_by(ConsentRecord.version)
        )
    )
    if not rows:
        # The deposit's consent, as version 1 (deposits predate this table's rows).
        first = ConsentRecord(
            item_id=item.id,
            version=1,
            scopes=sorted(item.consent),
            recorded_by=item.depositor,
            recorded_at=item.created_at,
            sealed_form=None,
        )
        session.add(first)
        rows = [first]
    return rows


def _version(row: ConsentRecord) -> ConsentVersion:
    return ConsentVersion(
        version=row.version,
        scopes=tuple(row.scopes),
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        has_form=row.sealed_form is not None,
    )


def _check_change(
    grant: Collection[str],
    withdraw: Collection[str],
    basis: str | None,
    form: bytes | None,
    note: str | None,
) -> tuple[frozenset[str], frozenset[str]]:
    """Return the scopes to grant and withdraw. Raises `BadField` naming the first defect."""
    granted, withdrawn = _scopes(grant, "grant"), _scopes(withdraw, "withdraw")
    if granted & withdrawn:
        raise BadField("withdraw", "a scope cannot be granted and withdrawn at once")
    if not granted and not withdrawn and form is None:
        raise BadField("grant", "give scopes to grant or withdraw, or a consent form")
    if basis not in BASES:
        raise BadField("basis", f"say what the change rests on: {' or '.join(BASES)}")
    if basis == CONSENT_FORM and form is None:
        raise BadField("form", "a change on the basis of a consent form needs the form")
    if form is not None and not 0 < len(form) <= MAX_FORM_BYTES:
        raise BadField("form", f"1 to {MAX_FORM_BYTES} bytes")
    if note is not None and not 0 < len(note) <= MAX_NOTE:
        raise BadField("note", f"1 to {MAX_NOTE} characters")
    return granted, withdrawn


def change_consent(
    vault: Vault,
    principal: Principal,
    item_id: str,
    *,
    grant: Collection[str] = (),
    withdraw: Collection[str] = (),
    basis: str | None = None,
    form: bytes | None = None,
    note: str | None = None,
) -> ConsentVersion:
    """Record a new consent version of `item_id`: its scopes plus `grant`, minus `withdraw`.

    `basis` is one of `BASES`; `form` is the signed consent form (required with
    `consent_form`), sealed to the item's identity; `note` is free text. The ledger entry
    names the basis and the form's SHA-256, and holds the note sealed. The new scopes apply
    from the next request on. A change that leaves the scopes as they are, without a form,
    records nothing and returns the current version. Withdrawing every scope is allowed: no one
    may then use the item, and a custodian may crypto-shred it.

    Raises `BadField` (unknown scope, a scope both granted and withdrawn, nothing to change, no
    basis, no form for `consent_form`, form or note too large), `NotFound` (also for an item the
    caller may not see), `Forbidden` (the policy, or `depositor_confirmation` from anyone but
    the depositor), or `Conflict` for a shredded item.
    """
    granted, withdrawn = _check_change(grant, withdraw, basis, form, note)
    with audited(
        vault,
        principal,
        actions.ITEM_CONSENT_CHANGE,
        item_id,
        entry=ledger.actions.CONSENT_CHANGE,
        details={"basis": basis},
        needs_sight=True,
    ) as audit:
        if basis == DEPOSITOR_CONFIRMATION and audit.item.depositor != principal.subject:
            # Refused before the block touches its transaction: the refusal is its own entry.
            reason = "only the depositing therapist confirms a change; give a consent form"
            refuse(
                vault.sessions,
                principal,
                actions.ITEM_CONSENT_CHANGE,
                item_resource(audit.item),
                reason,
            )
        session = audit.session
        # Re-read under the transaction: the change applies to the scopes stored now.
        item = session.get(Item, item_id, with_for_update=True) or load_item(session, item_id)
        identity = item_identity(vault, session, item_id)
        records = _records(session, item)
        scopes = sorted((frozenset(item.consent) | granted) - withdrawn)
        if scopes == sorted(item.consent) and form is None:
            # Nothing changes (a scope granted again, or withdrawn but never given): no new
            # version, no ledger entry, so the history shows only real changes.
            audit.skip()
            return _version(records[-1])
        # The signed form is sealed to the item's own key: shredding the item destroys it.
        sealed_form = None if form is None else keys.seal_bytes(form, [keys.recipient_of(identity)])
        row = ConsentRecord(
            item_id=item_id,
            version=records[-1].version + 1,
            scopes=scopes,
            recorded_by=principal.subject,
            recorded_at=audit.now,
            sealed_form=sealed_form,
        )
        session.add(row)
        item.consent = scopes
        audit.details.update(
            version=row.version,
            scopes=scopes,
            granted=sorted(granted - frozenset(records[-1].scopes)),
            withdrawn=sorted(withdrawn & frozenset(records[-1].scopes)),
        )
        if form is not None:
            audit.details["form_sha256"] = hashlib.sha256(form).hexdigest()
        if note is not None:
            audit.sealed = seal_json({"note": note}, keys.recipient_of(identity))
        version = _version(row)
    # The index holds consent scopes for its scope filter: bring them up to date at once.
    after_consent_change(vault, item_id)
    return version


def history(vault: Vault, principal: Principal, item_id: str) -> list[ConsentVersion]:
    """Return every consent version of `item_id`, oldest first (those who may read the item).

    Raises `NotFound` or `Forbidden`.
    """
    authorize_item(vault.sessions, principal, actions.ITEM_STATUS, item_id)
    with vault.sessions.begin() as session:
        item = load_item(session, item_id)
        return [_version(row) for row in _records(session, item)]


def consent_form(vault: Vault, principal: Principal, item_id: str, version: int) -> bytes:
    """Return the consent form recorded with `version` of `item_id`'s consent; the read is a
    ledger entry. Raises `NotFound` (no item, version or form), `Forbidden` or `Conflict`."""
    # The form names the survivor: only those who may see identities read it.
    with audited(
        vault,
        principal,
        actions.ITEM_READ,
        item_id,
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "consent form", "version": version},
    ) as audit:
        if audit.allowed.obligations:
            # Decided before the block touches its transaction: a refusal is its own entry.
            authorize(
                vault.sessions, principal, actions.ITEM_CONSENT_CHANGE, item_resource(audit.item)
            )
        row = audit.session.get(ConsentRecord, (item_id, version))
        if row is None or row.sealed_form is None:
            raise NotFound(f"no consent form for version {version} of item {item_id}")
        return keys.unseal_bytes(row.sealed_form, item_identity(vault, audit.session, item_id))
