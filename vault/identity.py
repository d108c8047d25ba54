"""Identity fields of an item and its redacted rendition: what `redact_identities` hides.

An item may carry the survivor's identity fields (name, aliases, contact, birth date,
community), sealed to the item's identity (promise 1), and a redacted rendition of its document
that the depositor attached. Principals whose decision carries `redact_identities` see every
identity field as "[redacted]" (API results here; titles, filenames and notes in
`vault.retrieve`; snippets in `vault.searching`) and download the redacted rendition, never the
original; with no rendition there is nothing they may download.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, cast

import keys
from policies import Allow, Principal, actions, obligations
from vault import ledger
from vault.access import audited, authorize_item
from vault.consent import item_identity, load_item
from vault.db.access_tables import ItemIdentity, RedactedRendition
from vault.errors import BadField, Conflict, NotFound, TooLarge
from vault.ids import new_id
from vault.indexing import after_identity_change
from vault.objects import orphans
from vault.parts import Vault
from vault.sealing import open_json, seal_json
from vault.storage import ObjectLocked, ObjectNotFound

REDACTED = "[redacted]"
RENDITION_PREFIX = "redacted/"
FIELDS = ("name", "aliases", "contact", "birth_date", "community")
MAX_FIELD = 1000
MAX_ALIASES = 50


def redacts(decision: Allow) -> bool:
    """Return whether `decision` obliges the vault to hide the survivor's identity."""
    return obligations.REDACT_IDENTITIES in decision.obligations


def _check(fields: Mapping[str, object]) -> dict[str, object]:
    clean: dict[str, object] = {}
    for name, value in fields.items():
        if name not in FIELDS:
            raise BadField(name, f"unknown identity field; use {', '.join(FIELDS)}")
        if name == "aliases":
            if not isinstance(value, list) or len(value) > MAX_ALIASES:
                raise BadField(name, f"a list of at most {MAX_ALIASES} strings")
            values = value
        else:
            values = [value]
        for one in values:
            if not isinstance(one, str) or not one.strip() or len(one) > MAX_FIELD:
                raise BadField(name, f"1 to {MAX_FIELD} characters")
        clean[name] = value
    if not clean:
        raise BadField("identity", "give at least one field")
    return clean


def set_identity(
    vault: Vault, principal: Principal, item_id: str, fields: Mapping[str, object]
) -> None:
    """Record (replace) the identity fields of `item_id`, sealed to the item's identity.

    Those who record the survivor's consent record their identity (`item.consent_change`), on
    items they see. Raises `BadField`, `NotFound`, `Forbidden` or `Conflict` (shredded).
    """
    clean = _check(fields)
    with audited(
        vault,
        principal,
        actions.ITEM_CONSENT_CHANGE,
        item_id,
        entry=ledger.actions.ENCRYPTION,
        details={"purpose": "identity fields", "fields": sorted(clean)},
        needs_sight=True,
    ) as audit:
        session, now = audit.session, audit.now
        identity = item_identity(vault, session, item_id)
        sealed = seal_json(clean, keys.recipient_of(identity))
        row = session.get(ItemIdentity, item_id)
        if row is None:
            session.add(
                ItemIdentity(
                    item_id=item_id, sealed=sealed, recorded_by=principal.subject, recorded_at=now
                )
            )
        else:
            row.sealed, row.recorded_by, row.recorded_at = sealed, principal.subject, now
    # Its words leave the field searched under the redaction obligation (promise 11).
    after_identity_change(vault, item_id)


def show_identity(vault: Vault, principal: Principal, item_id: str) -> dict[str, object]:
    """Return the identity fields of `item_id` as `principal` may see them.

    Under `redact_identities` every recorded field reads "[redacted]" and nothing is unsealed;
    otherwise the read is a ledger entry. Raises `NotFound` (also when none are recorded),
    `Forbidden` or `Conflict` (shredded).
    """
    with audited(
        vault,
        principal,
        actions.ITEM_READ,
        item_id,
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "identity fields"},
    ) as audit:
        session = audit.session
        row = session.get(ItemIdentity, item_id)
        if row is None:
            raise NotFound(f"item {item_id} has no identity fields")
        if redacts(audit.allowed):
            # Which fields exist is shown (their names are the fixed vocabulary), never a value;
            # no value is shown, so the read is no entry.
            audit.skip()
            names = open_json(row.sealed, item_identity(vault, session, item_id))
            return {name: [REDACTED] if name == "aliases" else REDACTED for name in sorted(names)}
        return open_json(row.sealed, item_identity(vault, session, item_id))


@dataclass(frozen=True)
class Rendition:
    """A stored redacted rendition: its size and the SHA-256 of its plaintext."""

    size: int
    sha256: str


class RenditionUpload:
    """Attach a redacted rendition to an item, streamed: `start`, `write`, then `commit`/`abort`.

    The bytes are hashed and sealed to the item's own identity as they arrive (so shredding the
    item destroys the rendition too); the row commits only once the object is durable.
    """

    def __init__(self, vault: Vault, principal: Principal, item_id: str, identity: str) -> None:
        self._vault, self._principal, self._item_id = vault, principal, item_id
        # Not under `vault.objects.PREFIX`: the sweep must not take a rendition for an orphan.
        self._object = f"{RENDITION_PREFIX}{new_id()}"
        self._hash = hashlib.sha256()
        self._size = 0
        self._stack = ExitStack()
        self._writer = self._stack.enter_context(vault.store.writer(self._object))
        self._sealer = keys.Sealer(cast(BinaryIO, self._writer), [keys.recipient_of(identity)])

    @classmethod
    def start(cls, vault: Vault, principal: Principal, item_id: str) -> RenditionUpload:
        """Check the item and the policy (`item.consent_change`: the depositor's side; only on
        an item the caller sees).

        Raises `NotFound`, `Forbidden`, or `Conflict` (shredded, or a rendition exists).
        """
        # Not `audited`: the decision is here, the entry in `commit`, with the upload between
        # (a transaction cannot stay open while the body streams in).
        authorize_item(
            vault.sessions, principal, actions.ITEM_CONSENT_CHANGE, item_id, needs_sight=True
        )
        with vault.sessions() as session:
            if session.get(RedactedRendition, item_id) is not None:
                raise Conflict(f"item {item_id} already has a redacted rendition")
            identity = item_identity(vault, session, item_id)
        return cls(vault, principal, item_id, identity)

    def write(self, data: bytes) -> None:
        """Hash and seal `data`. Raises `TooLarge` past the upload limit (then `abort`)."""
        self._size += len(data)
        if self._size > self._vault.settings.max_upload_bytes:
            raise TooLarge(f"the limit is {self._vault.settings.max_upload_bytes} bytes")
        self._hash.update(data)
        self._sealer.write(data)

    def abort(self) -> None:
        """Give up: the store removes every trace of the object."""
        self._stack.close()

    def commit(self) -> Rendition:
        """Make the object durable, then record it with a ledger entry; lock it after.

        Raises `BadField` for an empty body, `Conflict` if a rendition was attached meanwhile.
        """
        if self._size == 0:
            self.abort()
            raise BadField("body", "an empty rendition cannot be attached")
        with self._stack:
            self._sealer.close()
            self._writer.commit()
        rendition = Rendition(self._size, self._hash.hexdigest())
        vault = self._vault
        try:
            with vault.sessions.begin() as session:
                if session.get(RedactedRendition, self._item_id) is not None:
                    raise Conflict(f"item {self._item_id} already has a redacted rendition")
                item = load_item(session, self._item_id)
                session.add(
                    RedactedRendition(
                        item_id=self._item_id,
                        object_name=self._object,
                        size=rendition.size,
                        sha256=rendition.sha256,
                        recorded_by=self._principal.subject,
                        recorded_at=vault.clock(),
                    )
                )
                ledger.append(
                    session,
                    actor=self._principal,
                    action=ledger.actions.INGESTION,
                    item_id=self._item_id,
                    case_id=item.case_id,
                    details={
                        "rendition": "redacted",
                        "sha256": rendition.sha256,
                        "size": rendition.size,
                    },
                )
        except BaseException:
            vault.store.delete(self._object)
            raise
        vault.store.lock(self._object)
        return rendition


def redacted_rendition(vault: Vault, item_id: str) -> tuple[Rendition, Iterator[bytes]]:
    """Return the redacted rendition of `item_id` and its plaintext chunks (tags verified).

    Call only after the policy allowed the download. Raises `NotFound` when there is none,
    `Conflict` when the item is shredded.
    """
    with vault.sessions() as session:
        row = session.get(RedactedRendition, item_id)
        if row is None:
            raise NotFound(f"item {item_id} has no redacted rendition to download")
        identity = item_identity(vault, session, item_id)
    return Rendition(row.size, row.sha256), _chunks(vault, row.object_name, identity)


def _chunks(vault: Vault, name: str, identity: str) -> Iterator[bytes]:
    with vault.store.open(name) as source:
        yield from keys.open_stream(source, identity)


def sweep_renditions(vault: Vault, cutoff: datetime) -> int:
    """Delete rendition objects no row references, written before `cutoff`; return how many.

    A crash between a rendition's upload and its commit leaves such an object (promise 7);
    younger ones may belong to an upload in progress. Locked objects (a shredded item's
    rendition under retention) are left for their retention to end.
    """
    removed = 0
    old = [info for info in vault.store.entries(RENDITION_PREFIX) if info.modified <= cutoff]
    for info in orphans(vault.sessions, RedactedRendition.object_name, old):
        try:
            vault.store.delete(info.name)
        except (ObjectLocked, ObjectNotFound):
            continue
        removed += 1
    return removed
