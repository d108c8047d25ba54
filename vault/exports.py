"""Exports to truth commissions (issue 18): request, approval, download, revocation, expiry.

The flow (docs/exports.md): a commission account granted on a case, or a custodian on its
behalf, asks for an export of that case (narrowed, if wanted, by a search query, kinds and
dates), stating a purpose and a legal basis, which are sealed. The request is an approval of
kind `export` under the two-person rule (`vault.approvals`): the requester counts as the first
person, and a custodian other than the requester approves after seeing a preview of what would
go in (counts by kind, consent, redactions, total size; never content). Nothing is built before
approval: the approval only queues the export, and a builder (`vault.export_build`) picks it
up, selects the items whose consent includes `truth_commission` at that moment, and streams
the bag into an object. The commission downloads it, with HTTP Range, until it expires.

Revocation is checked whenever an export is looked at or downloaded: if the commission lost
its grant on the case, or an item that went in lost its `truth_commission` consent (or was
shredded), the export is revoked, its object removed, and a download is refused with that
reason. A new request (`rebuild`) selects again, without that item.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

import keys
from policies import Allow, Principal, Resource, actions, consent, decide, kinds, roles
from vault import approvals, ledger, recipients
from vault.access import authorize, authorize_case, item_resource, refuse
from vault.accounts import principal_of
from vault.approvals import ApprovalRecord, Kind
from vault.db import Item, ItemKey, User
from vault.db.access_tables import ItemIdentity, RedactedRendition
from vault.db.approval_tables import Approval
from vault.db.export_tables import Export
from vault.domain import KINDS
from vault.errors import BadField, Conflict, NotFound, VaultError
from vault.identity import redacts
from vault.ids import new_id
from vault.parts import METADATA_IDENTITY, Vault
from vault.ranges import parse_range
from vault.sealing import open_json, seal_json
from vault.storage import ObjectNotFound

EXPORT: Final = "export"  # the approval kind
PREFIX: Final = "exports/"  # objects of built bags
REQUESTED, QUEUED, BUILDING = "requested", "queued", "building"
READY, FAILED, REVOKED, EXPIRED, DENIED = "ready", "failed", "revoked", "expired", "denied"
STATES: Final = (REQUESTED, DENIED, QUEUED, BUILDING, READY, FAILED, REVOKED, EXPIRED)
MAX_TEXT: Final = 2000
MAX_QUERY: Final = 1000
LIST_LIMIT: Final = 500
# Actors of the steps no credential takes: the vault's own checks (ledger `actor`).
REVOKER: Final = "vault (export revocation)"
SWEEPER: Final = "vault (export expiry)"
_NOT_BUILT = "export {id} is {state}: there is nothing to download yet"


class Gone(VaultError):
    """The export existed but cannot be had any more: revoked or expired (`detail` says why)."""

    code = "gone"


@dataclass(frozen=True)
class ExportRequest:
    """What a requester asks for. `purpose`, `legal_basis` and `query` are sealed at rest."""

    case_id: str
    purpose: str = field(repr=False)
    legal_basis: str = field(repr=False)
    commission: str | None = None  # default: the requester, who must then be a commission
    query: str | None = field(default=None, repr=False)
    kinds: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class Preview:
    """What an export would hold if built now: counts and sizes only, never content.

    `items`/`bytes`: what would go in; `by_kind`: of those; `consented`/`not_consented`: of the
    candidates, with and without `truth_commission`; `redacted`: going in as a redacted rendition
    with identity fields hidden; `no_rendition`: left out because the policy asks for redaction
    and the item has no redacted rendition; `shredded`: left out, unreadable.
    """

    items: int
    bytes: int
    by_kind: dict[str, int]
    consented: int
    not_consented: int
    redacted: int
    no_rendition: int
    shredded: int


@dataclass(frozen=True)
class ExportView:
    """An export as its requester, its commission and custodians see it (no sealed words)."""

    id: str
    case_id: str
    commission: str
    requested_by: str
    requested_at: datetime
    state: str
    reason: str | None
    approval_id: str | None
    kinds: tuple[str, ...]
    date_from: date | None
    date_to: date | None
    has_query: bool
    items: int | None
    size: int | None
    sha256: str | None
    checkpoint_size: int | None
    built_at: datetime | None
    expires_at: datetime | None
    downloads: int
    summary: dict[str, Any] | None
    preview: Preview | None  # while it waits for approval


@dataclass(frozen=True)
class ExportDetail(ExportView):
    """An export with its sealed request opened (its requester, commission and custodians)."""

    purpose: str
    legal_basis: str
    query: str | None


@dataclass(frozen=True)
class Chosen:
    """An item chosen for a bag, and whether the policy asks for its identity to be hidden."""

    item: Item
    redact: bool


@dataclass(frozen=True)
class Selection:
    """The items that would go in now, and the counts of the preview."""

    chosen: list[Chosen]
    preview: Preview


@dataclass(frozen=True)
class Slice:
    """A download: bytes `start..end` (inclusive) of `total`; `partial` for a 206 answer."""

    start: int
    end: int
    total: int
    sha256: str
    partial: bool
    chunks: Iterator[bytes]


# --- selection -------------------------------------------------------------------------------


def commission_principal(session: Session, name: str) -> Principal:
    """Return the principal of the commission account `name`. Raises `NotFound`, `BadField`."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled:
        raise NotFound(f"no account {name!r}")
    if user.role != roles.COMMISSION:
        raise BadField("commission", f"{name} is a {user.role}, not a commission account")
    return principal_of(session, user)


def select_items(
    vault: Vault,
    commission: Principal,
    case_id: str,
    *,
    kinds_: Sequence[str] = (),
    date_from: date | None = None,
    date_to: date | None = None,
    query: str | None = None,
) -> Selection:
    """Return the items of `case_id` an export to `commission` would hold now, and the counts.

    An item goes in when its consent includes `truth_commission` and the policy allows the
    commission `export.request` on it; under `redact_identities` only with a redacted rendition.
    Raises `BadField` for a query the index cannot run.
    """
    wanted = _matching(vault, commission, case_id, query) if query else None
    with vault.sessions() as session:
        statement = select(Item).where(Item.case_id == case_id)
        if kinds_:
            statement = statement.where(Item.kind.in_(list(kinds_)))
        candidates = [
            item
            for item in session.scalars(statement.order_by(Item.created_at, Item.id)).all()
            if _in_dates(item.created_at, date_from, date_to)
            and (wanted is None or item.id in wanted)
        ]
        # By case, not by a list of ids: a case of many thousand items stays one query.
        keyed = set(
            session.scalars(
                select(ItemKey.item_id)
                .join(Item, Item.id == ItemKey.item_id)
                .where(Item.case_id == case_id)
            ).all()
        )
        renditions = {
            row.item_id: row.size
            for row in session.scalars(
                select(RedactedRendition)
                .join(Item, Item.id == RedactedRendition.item_id)
                .where(Item.case_id == case_id)
            ).all()
        }
    chosen: list[Chosen] = []
    by_kind: dict[str, int] = {}
    counts = {"consented": 0, "not_consented": 0, "redacted": 0, "no_rendition": 0, "shredded": 0}
    total = 0
    for item in candidates:
        # `truth_commission` whatever a policy file says, and what the policy says on top.
        decision = decide(commission, actions.EXPORT_REQUEST, item_resource(item))
        if consent.TRUTH_COMMISSION not in item.consent or not isinstance(decision, Allow):
            counts["not_consented"] += 1
            continue
        counts["consented"] += 1
        if item.id not in keyed:
            counts["shredded"] += 1
            continue
        redact = redacts(decision)
        size = item.size
        if redact:
            if item.id not in renditions:
                counts["no_rendition"] += 1
                continue
            counts["redacted"] += 1
            size = renditions[item.id]
        chosen.append(Chosen(item, redact))
        by_kind[item.kind] = by_kind.get(item.kind, 0) + 1
        total += size
    preview = Preview(items=len(chosen), bytes=total, by_kind=by_kind, **counts)
    return Selection(chosen, preview)


def _in_dates(created: datetime, date_from: date | None, date_to: date | None) -> bool:
    day = created.date()
    return (date_from is None or day >= date_from) and (date_to is None or day <= date_to)


def _matching(vault: Vault, commission: Principal, case_id: str, text: str) -> set[str]:
    """Return the ids of the items of `case_id` that match `text` in the index, consent
    `truth_commission` (the scope carries it: the index never sees a query without one)."""
    from search import AccessScope, Query, QueryError
    from search.ports import MAX_PAGE_SIZE
    from vault.indexing import index_of

    scope = AccessScope(frozenset({case_id}), frozenset({consent.TRUTH_COMMISSION}))
    index = index_of(vault)
    found: set[str] = set()
    page = 1
    while True:
        try:
            results = index.search(
                Query(text, (scope,), page=page, page_size=MAX_PAGE_SIZE, facets=False)
            )
        except QueryError as exc:
            raise BadField("query", str(exc)) from None  # what is wrong and where, never the text
        found.update(hit.item_id for hit in results.hits)
        if page * MAX_PAGE_SIZE >= results.total or not results.hits:
            return found
        page += 1


# --- request and approval --------------------------------------------------------------------


def _text(name: str, value: str, limit: int = MAX_TEXT) -> str:
    if not value.strip() or len(value) > limit or "\x00" in value:
        raise BadField(name, f"1 to {limit} characters")
    return value.strip()


def _check_request(req: ExportRequest) -> None:
    _text("purpose", req.purpose)
    _text("legal_basis", req.legal_basis)
    if req.query is not None:
        _text("query", req.query, MAX_QUERY)
    unknown = set(req.kinds) - set(KINDS)
    if unknown:
        raise BadField("kinds", f"unknown kind(s); use {', '.join(KINDS)}")
    if req.date_from and req.date_to and req.date_from > req.date_to:
        raise BadField("date_from", "after date_to")


def _metadata_recipient(vault: Vault) -> str:
    return keys.recipient_of(vault.keyring.secret(METADATA_IDENTITY).decode("ascii"))


def request(vault: Vault, principal: Principal, req: ExportRequest) -> ExportView:
    """Ask for an export of `req.case_id` to `req.commission` (default: the requester).

    Checks, before anything is stored: the requester may `export.request` in the case (a
    commission granted on it, or a custodian); a custodian names a commission, which must hold
    a commission grant on the case and have recipient keys; at least one item would go in.
    Then records the export and its approval request (the purpose and legal basis sealed, as the
    approval's note). Raises `BadField`, `NotFound`, `Forbidden`, `Conflict`.
    """
    _check_request(req)
    case = Resource(kind=kinds.CASE, case_id=req.case_id)
    name = req.commission or principal.subject
    authorize_requester(vault, principal, req.case_id, name)
    with vault.sessions() as session:
        commission = commission_principal(session, name)
    if not decide(commission, actions.EXPORT_REQUEST, case):
        refuse(
            vault.sessions,
            principal,
            actions.EXPORT_REQUEST,
            case,
            f"{name} holds no commission grant on case {req.case_id}",
        )
    if not recipients.recipients_of(vault, name):
        raise Conflict(
            f"{name} has no recipient keys; a custodian adds one first "
            f"(tvault users recipients add {name} KEY)"
        )
    selection = select_items(
        vault,
        commission,
        req.case_id,
        kinds_=req.kinds,
        date_from=req.date_from,
        date_to=req.date_to,
        query=req.query,
    )
    if not selection.preview.items:
        raise Conflict(
            f"case {req.case_id} has no item that may go to {name} (consent including "
            "truth_commission, matching the filters); nothing to export"
        )
    sealed = seal_json(
        {
            "purpose": req.purpose.strip(),
            "legal_basis": req.legal_basis.strip(),
            "query": req.query,
        },
        _metadata_recipient(vault),
    )
    export_id = new_id()
    with vault.sessions.begin() as session:
        session.add(
            Export(
                id=export_id,
                case_id=req.case_id,
                commission=name,
                requested_by=principal.subject,
                requested_at=vault.clock(),
                kinds=sorted(set(req.kinds)),
                date_from=req.date_from,
                date_to=req.date_to,
                has_query=req.query is not None,
                sealed_request=sealed,
                state=REQUESTED,
                attempts=0,
                downloads=0,
            )
        )
    preview = selection.preview
    try:
        asked = approvals.request(
            vault,
            principal,
            EXPORT,
            export_id,
            payload={
                "export": export_id,
                "commission": name,
                "items": preview.items,
                "bytes": preview.bytes,
                "kinds": sorted(set(req.kinds)),
                "has_query": req.query is not None,
            },
            note=f"Purpose: {req.purpose.strip()}\nLegal basis: {req.legal_basis.strip()}",
        )
    except BaseException:
        # Nothing half-done (promise 7): no export without its approval request.
        with vault.sessions.begin() as session:
            row = session.get(Export, export_id)
            if row is not None:
                session.delete(row)
        raise
    with vault.sessions.begin() as session:
        session.execute(update(Export).where(Export.id == export_id).values(approval_id=asked.id))
    return show(vault, principal, export_id)


def rebuild(vault: Vault, principal: Principal, export_id: str) -> ExportView:
    """Ask again for a revoked, expired, failed or denied export: the same case, commission,
    filters, purpose and legal basis, a new approval, and a new selection when built.

    Raises as `request` does, and `Conflict` if the export is still live.
    """
    row = _visible(vault, principal, export_id)
    state = _state_of(vault, row)
    if state not in (REVOKED, EXPIRED, FAILED, DENIED):
        raise Conflict(f"export {export_id} is {state}; only an ended export is asked for again")
    words = open_json(row.sealed_request, vault.keyring.secret(METADATA_IDENTITY).decode("ascii"))
    query = words.get("query")
    return request(
        vault,
        principal,
        ExportRequest(
            case_id=row.case_id,
            purpose=str(words["purpose"]),
            legal_basis=str(words["legal_basis"]),
            commission=row.commission,
            query=str(query) if query is not None else None,
            kinds=tuple(row.kinds),
            date_from=row.date_from,
            date_to=row.date_to,
        ),
    )


def authorize_requester(vault: Vault, principal: Principal, case_id: str, commission: str) -> None:
    """Check that `principal` may ask for an export of `case_id` to `commission`.

    The commission itself needs `export.request` in the case (its grant). Anyone else asks on
    its behalf, which is managing the commission's account: `user.manage` and `case.read` of
    the case (custodians). Whether the commission may have the case's items is decided with the
    commission's own principal (`request`, `select_items`), never the custodian's, who reads no
    content (DESIGN.md separation of duties). Raises `NotFound` or `Forbidden`.
    """
    case = Resource(kind=kinds.CASE, case_id=case_id)
    if principal.subject == commission:
        authorize_case(vault.sessions, principal, actions.EXPORT_REQUEST, case)
        return
    authorize_case(vault.sessions, principal, actions.CASE_READ, case)
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))


def _load(vault: Vault, export_id: str) -> Export:
    with vault.sessions() as session:
        row = session.get(Export, export_id) if len(export_id) <= 32 else None
    if row is None:
        raise NotFound(f"no export {export_id}")
    return row


def _authorize_kind(vault: Vault, principal: Principal, export_id: str) -> Resource:
    """The approval kind's check: the requester may ask (`export.request`), anyone else must be
    allowed `export.approve` (a custodian other than the requester)."""
    row = _load(vault, export_id)
    resource = Resource(kind=kinds.EXPORT, case_id=row.case_id, requester=row.requested_by)
    if principal.subject == row.requested_by:
        authorize_requester(vault, principal, row.case_id, row.commission)
    else:
        if not decide(principal, actions.EXPORT_APPROVE, resource):
            reason = f"{actions.EXPORT_APPROVE} denied for {principal.subject}"
            refuse(vault.sessions, principal, actions.EXPORT_APPROVE, resource, reason)
    return resource


def _check_kind(vault: Vault, export_id: str, _payload: Mapping[str, Any]) -> None:
    if _load(vault, export_id).state != REQUESTED:
        raise Conflict(f"export {export_id} is not waiting for approval")


def _run_kind(vault: Vault, approver: Principal, record: ApprovalRecord) -> Mapping[str, Any]:
    """On approval: queue the export for the builder (nothing is built inside the request)."""
    now = vault.clock()
    with vault.sessions.begin() as session:
        queued = session.execute(
            update(Export)
            .where(Export.id == record.subject, Export.state == REQUESTED)
            .values(state=QUEUED, lease_until=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(queued, "rowcount", 0) != 1:
            raise Conflict(f"export {record.subject} is not waiting for approval")
    for service in vault.services:
        wake = getattr(service, "wake_exports", None)
        if callable(wake):
            wake()
    return {"export": record.subject, "export_state": QUEUED}


approvals.register(
    Kind(EXPORT, actions.EXPORT_APPROVE, False, _authorize_kind, _check_kind, _run_kind)
)


def approve(vault: Vault, principal: Principal, export_id: str) -> ExportView:
    """Approve export `export_id` (a custodian other than the requester); it is then queued.

    Raises `NotFound`, `Forbidden`, `Conflict`.
    """
    row = _load(vault, export_id)
    if row.approval_id is None:
        raise Conflict(f"export {export_id} has no approval request")
    approvals.approve(vault, principal, row.approval_id)
    return show(vault, principal, export_id)


def deny(vault: Vault, principal: Principal, export_id: str, reason: str) -> ExportView:
    """Refuse export `export_id` with `reason` (sealed); nothing is built.

    Raises `NotFound`, `Forbidden`, `BadField`, `Conflict`.
    """
    row = _load(vault, export_id)
    if row.approval_id is None:
        raise Conflict(f"export {export_id} has no approval request")
    approvals.deny(vault, principal, row.approval_id, reason)
    with vault.sessions.begin() as session:
        session.execute(
            update(Export)
            .where(Export.id == export_id, Export.state == REQUESTED)
            .values(state=DENIED)
            .execution_options(synchronize_session=False)
        )
    return show(vault, principal, export_id)


# --- seeing exports --------------------------------------------------------------------------


def _may_see(principal: Principal, row: Export) -> bool:
    # The commission it is for, who asked, and custodians (who approve): no one else learns of it.
    return principal.subject in (row.commission, row.requested_by) or bool(
        decide(principal, actions.APPROVAL_LIST, Resource(kind=kinds.APPROVAL))
    )


def _visible(vault: Vault, principal: Principal, export_id: str) -> Export:
    with vault.sessions() as session:
        row = session.get(Export, export_id) if len(export_id) <= 32 else None
    if row is None or not _may_see(principal, row):
        refuse(
            vault.sessions,
            principal,
            actions.EXPORT_DOWNLOAD,
            Resource(kind=kinds.EXPORT),
            "no such export" if row is None else "the export is not theirs",
            f"no export {export_id}",
        )
    return row


def _state_of(vault: Vault, row: Export) -> str:
    if row.state == REQUESTED and row.approval_id is not None:
        with vault.sessions() as session:
            state = session.scalar(select(Approval.state).where(Approval.id == row.approval_id))
        if state in (approvals.DENIED, approvals.FAILED):
            return DENIED
    return row.state


def _view(vault: Vault, row: Export, *, preview: bool) -> ExportView:
    state = _state_of(vault, row)
    shown = None
    if preview and state == REQUESTED:
        with vault.sessions() as session:
            try:
                commission = commission_principal(session, row.commission)
            except VaultError:
                commission = None
        if commission is not None:
            shown = select_items(
                vault,
                commission,
                row.case_id,
                kinds_=row.kinds,
                date_from=row.date_from,
                date_to=row.date_to,
                query=open_request(vault, row).get("query"),
            ).preview
    return ExportView(
        id=row.id,
        case_id=row.case_id,
        commission=row.commission,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        state=state,
        reason=row.reason,
        approval_id=row.approval_id,
        kinds=tuple(row.kinds),
        date_from=row.date_from,
        date_to=row.date_to,
        has_query=row.has_query,
        items=len(row.items) if row.items is not None else None,
        size=row.size,
        sha256=row.sha256,
        checkpoint_size=row.checkpoint_size,
        built_at=row.built_at,
        expires_at=row.expires_at,
        downloads=row.downloads,
        summary=dict(row.summary) if row.summary is not None else None,
        preview=shown,
    )


def open_request(vault: Vault, row: Export) -> dict[str, Any]:
    """Return the sealed words of `row`'s request: purpose, legal basis, query (or None)."""
    identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    return open_json(row.sealed_request, identity)


def show(vault: Vault, principal: Principal, export_id: str) -> ExportView:
    """Return export `export_id` (to its commission, its requester and custodians), with a live
    preview while it waits for approval; revokes it first if it must be. Raises `NotFound`."""
    row = _visible(vault, principal, export_id)
    row = check_revocation(vault, row)
    return _view(vault, row, preview=True)


def detail(vault: Vault, principal: Principal, export_id: str) -> ExportDetail:
    """Return export `export_id` with its purpose, legal basis and query opened. Raises
    `NotFound`."""
    view = show(vault, principal, export_id)
    words = open_request(vault, _load(vault, export_id))
    query = words.get("query")
    return ExportDetail(
        **{f: getattr(view, f) for f in ExportView.__dataclass_fields__},
        purpose=str(words["purpose"]),
        legal_basis=str(words["legal_basis"]),
        query=str(query) if query is not None else None,
    )


def list_exports(vault: Vault, principal: Principal, state: str | None = None) -> list[ExportView]:
    """Return the exports `principal` may see, newest first (at most 500): custodians see all,
    a commission those they asked for or that are for them. Raises `BadField` (state), and
    `Forbidden` for anyone else."""
    if state is not None and state not in STATES:
        raise BadField("state", f"one of {', '.join(STATES)}")
    statement = select(Export).order_by(Export.requested_at.desc(), Export.id).limit(LIST_LIMIT)
    if not decide(principal, actions.APPROVAL_LIST, Resource(kind=kinds.APPROVAL)):
        if not recipients.receives_exports(principal):
            # Neither a custodian nor a party to exports: refused (and recorded), not an
            # empty list, so that every route answers to the policy.
            authorize(
                vault.sessions, principal, actions.EXPORT_DOWNLOAD, Resource(kind=kinds.EXPORT)
            )
        statement = statement.where(
            (Export.commission == principal.subject) | (Export.requested_by == principal.subject)
        )
    with vault.sessions() as session:
        rows = list(session.scalars(statement).all())
    views = [_view(vault, check_revocation(vault, row), preview=False) for row in rows]
    return [v for v in views if state is None or v.state == state]


# --- revocation, download, expiry ------------------------------------------------------------


def revocation_reason(vault: Vault, row: Export) -> str | None:
    """Return why `row` may no longer be delivered (grant revoked, consent withdrawn, an item
    shredded), or None. Reasons name ids only."""
    with vault.sessions() as session:
        try:
            commission = commission_principal(session, row.commission)
        except VaultError:
            return f"the account {row.commission} is disabled or no longer a commission"
        case = Resource(kind=kinds.CASE, case_id=row.case_id)
        if not decide(commission, actions.EXPORT_REQUEST, case):
            return f"the grant of {row.commission} on case {row.case_id} was revoked"
        for item_id in row.items or ():
            item = session.get(Item, item_id)
            if item is None or session.get(ItemKey, item_id) is None:
                return f"item {item_id} was crypto-shredded"
            if consent.TRUTH_COMMISSION not in item.consent or not decide(
                commission, actions.EXPORT_REQUEST, item_resource(item)
            ):
                return f"consent for item {item_id} to go to a truth commission was withdrawn"
    return None


def check_revocation(vault: Vault, row: Export) -> Export:
    """Revoke `row` if it is ready but may no longer be delivered (or expire it, past its
    expiry); return the row as it is now.

    Revoking removes the object and is a ledger entry, in one step; a second caller finds it
    revoked already.
    """
    if row.state != READY:
        return row
    if row.expires_at is not None and row.expires_at <= vault.clock():
        expire(vault, row)  # shown as it is, before the sweep comes by
        return _load(vault, row.id)
    reason = revocation_reason(vault, row)
    if reason is None:
        return row
    with vault.sessions.begin() as session:
        done = session.execute(
            update(Export)
            .where(Export.id == row.id, Export.state == READY)
            .values(state=REVOKED, reason=reason)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) == 1:
            ledger.append(
                session,
                actor=REVOKER,
                action=ledger.actions.EXPORT,
                case_id=row.case_id,
                details={"export": row.id, "step": "revoked", "reason": reason},
            )
    _remove_object(vault, row.object_name)
    return _load(vault, row.id)


def _remove_object(vault: Vault, name: str | None) -> None:
    if name is None:
        return
    with contextlib.suppress(ObjectNotFound):
        vault.store.delete(name)


def download(
    vault: Vault, principal: Principal, export_id: str, range_header: str | None = None
) -> Slice:
    """Authorise and record a download of export `export_id` (the commission it is for), then
    open its age file from the range asked for.

    The ledger entry commits before the first byte leaves. Raises `NotFound` (unknown, or not
    theirs), `Forbidden` (the policy refuses), `Conflict` (not built), `Gone` (revoked, with the
    reason; expired), `vault.ranges.RangeNotSatisfiable`.
    """
    row = _visible(vault, principal, export_id)
    resource = Resource(kind=kinds.EXPORT, case_id=row.case_id, requester=row.requested_by)
    if principal.subject != row.commission:
        refuse(
            vault.sessions,
            principal,
            actions.EXPORT_DOWNLOAD,
            resource,
            f"export {export_id} is for {row.commission}",
        )
    decision = decide(principal, actions.EXPORT_DOWNLOAD, resource)
    if not isinstance(decision, Allow):
        # A revoked grant revokes the export too: the refusal is recorded, and says why.
        row = check_revocation(vault, row)
        if row.state == REVOKED:
            with vault.sessions.begin() as session:
                ledger.append(
                    session,
                    actor=principal,
                    action=ledger.actions.ACCESS_DENIED,
                    case_id=row.case_id,
                    details={"attempted": actions.EXPORT_DOWNLOAD, "reason": decision.reason},
                )
            raise Gone(f"export {export_id} was revoked: {row.reason}")
        refuse(vault.sessions, principal, actions.EXPORT_DOWNLOAD, resource, decision.reason)
    row = check_revocation(vault, row)
    state = _state_of(vault, row)
    now = vault.clock()
    if state == READY and row.expires_at is not None and row.expires_at <= now:
        expire(vault, row)
        state = EXPIRED
    if state == REVOKED:
        raise Gone(f"export {export_id} was revoked: {row.reason}")
    if state == EXPIRED:
        raise Gone(f"export {export_id} expired; ask for it again (tvault export rebuild)")
    if state == FAILED:
        raise Conflict(f"export {export_id} failed: {row.reason}")
    if state != READY or row.object_name is None or row.size is None or row.sha256 is None:
        raise Conflict(_NOT_BUILT.format(id=export_id, state=state))
    wanted = parse_range(range_header, row.size)
    start, end = wanted if wanted is not None else (0, row.size - 1)
    with vault.sessions.begin() as session:
        session.execute(
            update(Export)
            .where(Export.id == row.id)
            .values(downloads=Export.downloads + 1)
            .execution_options(synchronize_session=False)
        )
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.EXPORT,
            case_id=row.case_id,
            details={"export": row.id, "step": "download", "from": start, "to": end},
            now=now,
        )
    return Slice(
        start=start,
        end=end,
        total=row.size,
        sha256=row.sha256,
        partial=wanted is not None,
        chunks=_bytes(vault, row.object_name, start, end - start + 1),
    )


def _bytes(vault: Vault, name: str, start: int, length: int) -> Iterator[bytes]:
    chunk = 1024 * 1024
    with vault.store.open(name) as source:
        if start:
            if source.seekable():
                source.seek(start)
            else:
                skip = start
                while skip:
                    got = source.read(min(chunk, skip))
                    if not got:
                        return
                    skip -= len(got)
        left = length
        while left:
            data = source.read(min(chunk, left))
            if not data:
                return
            left -= len(data)
            yield data


def expire(vault: Vault, row: Export) -> bool:
    """Mark `row` expired, remove its object, record it; False if another process did."""
    with vault.sessions.begin() as session:
        done = session.execute(
            update(Export)
            .where(Export.id == row.id, Export.state == READY)
            .values(state=EXPIRED)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            return False
        ledger.append(
            session,
            actor=SWEEPER,
            action=ledger.actions.EXPORT,
            case_id=row.case_id,
            details={"export": row.id, "step": "expired"},
        )
    _remove_object(vault, row.object_name)
    return True


def sweep_exports(vault: Vault, cutoff: datetime) -> int:
    """Remove expired exports' objects, and `exports/` objects no export references written
    before `cutoff` (a build killed before its commit); return how many objects went."""
    now = vault.clock()
    with vault.sessions() as session:
        ready = list(session.scalars(select(Export).where(Export.state == READY)).all())
        referenced = set(
            session.scalars(select(Export.object_name).where(Export.object_name.is_not(None))).all()
        )
    removed = 0
    for row in ready:
        if row.expires_at is not None and row.expires_at <= now and expire(vault, row):
            removed += 1
    live = {name for name in referenced if name is not None}
    with vault.sessions() as session:
        ended = set(
            session.scalars(
                select(Export.object_name).where(Export.state.in_([EXPIRED, REVOKED]))
            ).all()
        )
    for info in vault.store.entries(PREFIX):
        orphan = info.name not in live and info.modified <= cutoff
        if orphan or info.name in ended:
            _remove_object(vault, info.name)
            removed += 1
    return removed


def ttl(vault: Vault) -> timedelta:
    """Return how long a built export is kept (`TVAULT_EXPORT_TTL_DAYS`)."""
    return timedelta(days=vault.settings.export_ttl_days)


def identity_fields(vault: Vault, session: Session, item_id: str, identity: str) -> dict[str, Any]:
    """Return the identity fields recorded for `item_id`, unsealed with its `identity`."""
    row = session.get(ItemIdentity, item_id)
    return open_json(row.sealed, identity) if row is not None else {}
