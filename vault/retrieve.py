"""Show, list and download items; every download and read of sealed metadata is in the ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import keys
from policies import Allow, Principal, Resource, actions, decide, kinds
from vault import item_keys, ledger
from vault.access import audited, authorize, authorize_case, item_resource
from vault.db import Case, Item, ItemKey
from vault.errors import NotFound
from vault.extraction import read_text as extracted
from vault.identity import REDACTED, redacted_rendition, redacts
from vault.parts import Vault
from vault.ranges import parse_range, sliced
from vault.sealing import open_json


@dataclass(frozen=True)
class ItemView:
    """An item as an allowed reader sees it: structural metadata and the unsealed fields."""

    id: str
    case_id: str
    kind: str
    language: str | None
    tags: tuple[str, ...]
    consent: tuple[str, ...]
    size: int
    sha256: str
    depositor: str
    created_at: datetime
    title: str | None
    filename: str | None
    notes: str | None


@dataclass(frozen=True)
class Download:
    """An authorised download: the item and its plaintext, chunk by chunk (tags verified)."""

    item: ItemView
    chunks: Iterator[bytes]
    # The redacted rendition under `redact_identities`: `item`'s sealed fields read "[redacted]".
    redacted: bool = False
    # The bytes `start..end` (inclusive) of `item.size`; `partial` when a `Range` asked for
    # them (a 206 answer), else the whole file.
    start: int = 0
    end: int = -1
    partial: bool = False

    @property
    def length(self) -> int:
        """How many bytes `chunks` yields."""
        return self.end - self.start + 1


def _identity(vault: Vault, session: Session, item_id: str) -> str:
    key = session.get(ItemKey, item_id)
    if key is None:
        # Crypto-shredded: the item is unreadable by design.
        raise NotFound(f"item {item_id} has no key (shredded)")
    return item_keys.open_identity(vault.keyring, item_id, key.wrapped)


def _view(item: Item, identity: str | None) -> ItemView:
    meta: dict[str, object] = open_json(item.sealed_meta, identity) if identity else {}

    def text(name: str) -> str | None:
        value = meta.get(name)
        return value if isinstance(value, str) else None

    return ItemView(
        id=item.id,
        case_id=item.case_id,
        kind=item.kind,
        language=item.language,
        tags=tuple(item.tags),
        consent=tuple(item.consent),
        size=item.size,
        sha256=item.sha256,
        depositor=item.depositor,
        created_at=item.created_at,
        title=text("title"),
        filename=text("filename"),
        notes=text("notes"),
    )


def _redact(view: ItemView, decision: Allow) -> ItemView:
    """Apply `redact_identities`: the sealed free-text fields may name the survivor."""
    if not redacts(decision):
        return view
    return dataclasses.replace(
        view,
        title=view.title and REDACTED,
        filename=view.filename and REDACTED,
        notes=view.notes and REDACTED,
    )


def _has_key(session: Session, item_id: str) -> bool:
    return session.get(ItemKey, item_id) is not None


def show_item(vault: Vault, principal: Principal, item_id: str) -> ItemView:
    """Return item `item_id` with its sealed fields opened, and record the read.

    Raises `NotFound` or `Forbidden`.
    """
    with audited(
        vault,
        principal,
        actions.ITEM_READ,
        item_id,
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "read"},
    ) as audit:
        identity = _identity(vault, audit.session, item_id)
        return _redact(_view(audit.item, identity), audit.allowed)


def list_items(vault: Vault, principal: Principal, case_id: str) -> list[ItemView]:
    """Return the items of `case_id` that `principal` may read, titles opened; record the read.

    Raises `NotFound` for an unknown case, and for one the caller may not see when none of its
    items is theirs to read.
    """
    # Not `audited`: there is no one decision before the act. Each item is decided as it is
    # listed, one entry covers those opened, and the case is refused only when none is visible.
    case = Resource(kind=kinds.CASE, case_id=case_id)
    with vault.sessions() as session:
        exists = session.execute(select(Case.id).where(Case.id == case_id)).first()
    if exists is None:
        # Refused like a case the caller may not see: the same answer and ledger entry.
        authorize_case(vault.sessions, principal, actions.CASE_READ, case)
    with vault.sessions.begin() as session:
        items = session.scalars(
            select(Item).where(Item.case_id == case_id).order_by(Item.created_at, Item.id)
        ).all()
        decided = [(i, decide(principal, actions.ITEM_READ, item_resource(i))) for i in items]
        # A shredded item (no key) is left out of listings: nothing of it can be shown.
        allowed = [(i, d) for i, d in decided if isinstance(d, Allow) and _has_key(session, i.id)]
        views = [_redact(_view(i, _identity(vault, session, i.id)), d) for i, d in allowed]
        if views:
            ledger.append(
                session,
                actor=principal,
                action=ledger.actions.DECRYPTION,
                case_id=case_id,
                details={"purpose": "list", "items": len(views)},
            )
    if not views and not decide(principal, actions.CASE_READ, case):
        # A case the caller may not see is "not found", like an unknown id (issue 7 point 6);
        # `authorize` records the attempt and raises that same NotFound.
        authorize(vault.sessions, principal, actions.CASE_READ, case)
    return views


def download(
    vault: Vault, principal: Principal, item_id: str, range_header: str | None = None
) -> Download:
    """Authorise and record a download of `item_id`, then open its plaintext stream.

    The ledger entry commits before the first byte leaves (DESIGN.md "Retrieve"): one entry
    per call, a `Range` (one `bytes=` range, `vault.ranges.parse_range`) included, its bytes
    in the entry's `from` and `to`. Raises `NotFound` or `Forbidden` (the refusal recorded
    first, as without a range), `RangeNotSatisfiable` (nothing read, no entry); the returned
    chunks raise `keys.UnsealError` on tampering.
    """
    with audited(
        vault,
        principal,
        actions.ITEM_DOWNLOAD,
        item_id,
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "download"},
    ) as audit:
        item = audit.item
        if redacts(audit.allowed):
            # An original cannot be redacted: serve the depositor's redacted rendition, or
            # nothing.
            rendition, chunks = redacted_rendition(vault, item_id)
            view = _redact(_view(item, _identity(vault, audit.session, item_id)), audit.allowed)
            audit.details["rendition"] = "redacted"
            view = dataclasses.replace(view, size=rendition.size, sha256=rendition.sha256)
            redacted = True
        else:
            identity = _identity(vault, audit.session, item_id)
            view = _view(item, identity)
            redacted = False
        wanted = parse_range(range_header, view.size)
        start, end = wanted if wanted is not None else (0, view.size - 1)
        if not redacted:
            # A generator: nothing is read from the store before the caller takes a chunk,
            # which is after the entry commits, when this block ends. A range starts at its
            # chunk, the ones before it passed over (`keys.open_stream`).
            chunks = _plaintext(vault, item.object_name, identity, start)
        if wanted is not None:
            audit.details["from"], audit.details["to"] = start, end
            chunks = sliced(chunks, 0 if not redacted else start, end - start + 1)
        download = Download(view, chunks, redacted, start, end, wanted is not None)
    return download


def _plaintext(vault: Vault, name: str, identity: str, start: int = 0) -> Iterator[bytes]:
    with vault.store.open(name) as source:
        yield from keys.open_stream(source, identity, start)


@dataclass(frozen=True)
class TextView:
    """An item's extracted text as its reader may see it: `text` None when there is none yet,
    or when it is `withheld` (the reader is under the redaction obligation, which a free text
    cannot be trusted to honour: fail closed)."""

    text: str | None = dataclasses.field(repr=False)
    withheld: bool


def read_text(vault: Vault, principal: Principal, item_id: str) -> TextView:
    """Return the extracted text of `item_id` for `principal`, and record the read.

    Raises `NotFound` or `Forbidden`; `keys.UnsealError` if the sealed text was altered.
    """
    with audited(
        vault,
        principal,
        actions.ITEM_READ,
        item_id,
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "read text"},
    ) as audit:
        if redacts(audit.allowed):
            audit.skip()  # nothing is opened
            return TextView(None, withheld=True)
        text = extracted(vault, item_id)
        if text is None:
            audit.skip()  # no text yet: nothing was opened
        return TextView(text, withheld=False)
