"""The two-person rule (DESIGN.md promise 10): what cannot be undone runs only once approved.

One custodian requests (`request`); the action runs when `TVAULT_APPROVAL_QUORUM` people in
all, the requester included, have said yes: inside the approving call that reaches the quorum,
with that approver's principal, through the same use case as before (policy engine, ledger). One
no (`deny`) ends the request and nothing runs. The requester may never approve their own
request, nor anyone approve twice; every step is a ledger entry.

An approval is generic: a `Kind` (registered by `vault.approval_kinds`, which an export kind
joins later) says which policy action the requester and every approver must be allowed, what
resource it is about, what must hold when asking, and what runs. Free text (a request's note, a
denial's reason) is sealed to the vault's metadata identity, in the table and in the ledger.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import keys
from policies import Principal, Resource, actions, kinds
from vault import ledger
from vault.access import authorize
from vault.db.approval_tables import Approval, ApprovalVote
from vault.errors import BadField, Conflict, Forbidden, NotFound, VaultError
from vault.ids import new_id
from vault.parts import METADATA_IDENTITY, Vault
from vault.sealing import open_json, seal_json

PENDING = "pending"  # waiting for approvals
APPROVED = "approved"  # the quorum is reached; the action is running (or was interrupted)
DONE = "done"
FAILED = "failed"  # the action was refused when it ran (a hold set meanwhile, say)
DENIED = "denied"
STATES = (PENDING, APPROVED, DONE, FAILED, DENIED)
APPROVE, DENY = "approve", "deny"
MAX_TEXT = 2000
LIST_LIMIT = 500


@dataclass(frozen=True)
class Kind:
    """A kind of approval. `authorize(vault, principal, subject)` asks the policy whether the
    requester, and then each approver, may do `action` on `subject` and returns its resource
    (raising `NotFound` or `Forbidden`, recorded as every refusal is); `check(vault, subject,
    payload)` raises `Conflict` or `BadField` when asking makes no sense; `run(vault, approver,
    record)` does it and returns a structural outcome (raising a `VaultError` if refused)."""

    name: str
    action: str
    on_item: bool  # the subject is an item id (ledger entries then name the item)
    authorize: Callable[[Vault, Principal, str], Resource]
    check: Callable[[Vault, str, Mapping[str, Any]], None]
    run: Callable[[Vault, Principal, ApprovalRecord], Mapping[str, Any]]


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Make `kind` available to `request` and `approve` (once per name)."""
    _KINDS[kind.name] = kind


def _kind(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        # Fail closed: an approval whose kind this process does not know never runs.
        raise Conflict(f"approvals of kind {name!r} are not known to this vault") from None


@dataclass(frozen=True)
class ApprovalRecord:
    """An approval as callers see it: the structural fields, who said yes, who said no."""

    id: str
    kind: str
    subject: str
    case_id: str | None
    payload: dict[str, Any]
    state: str
    quorum: int
    requested_by: str
    requested_at: datetime
    approvers: tuple[str, ...]
    denied_by: str | None
    decided_at: datetime | None
    outcome: dict[str, Any] | None
    has_note: bool


@dataclass(frozen=True)
class ApprovalDetail(ApprovalRecord):
    """An approval with its sealed words opened for a custodian: the note, the denial reason."""

    note: str | None
    denial_reason: str | None


def _record(session: Session, row: Approval) -> ApprovalRecord:
    votes = session.scalars(
        select(ApprovalVote)
        .where(ApprovalVote.approval_id == row.id)
        .order_by(ApprovalVote.voted_at, ApprovalVote.actor)
    ).all()
    denied = [v.actor for v in votes if v.vote == DENY]
    return ApprovalRecord(
        id=row.id,
        kind=row.kind,
        subject=row.subject,
        case_id=row.case_id,
        payload=dict(row.payload),
        state=row.state,
        quorum=row.quorum,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        approvers=tuple(v.actor for v in votes if v.vote == APPROVE),
        denied_by=denied[0] if denied else None,
        decided_at=row.decided_at,
        outcome=dict(row.outcome) if row.outcome is not None else None,
        has_note=row.sealed_note is not None,
    )


def _seal(vault: Vault, field: str, text: str) -> bytes:
    if not text.strip() or len(text) > MAX_TEXT:
        raise BadField(field, f"1 to {MAX_TEXT} characters")
    identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    return seal_json({field: text}, keys.recipient_of(identity))


def _resource(row: Approval | ApprovalRecord) -> Resource:
    return Resource(kind=kinds.APPROVAL, requester=row.requested_by)


def request(
    vault: Vault,
    principal: Principal,
    kind_name: str,
    subject: str,
    *,
    payload: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> ApprovalRecord:
    """Ask for an action of `kind_name` on `subject`; it runs once the quorum approves.

    `payload` is structural (it goes in the clear, in the ledger too); `note` is free text,
    sealed. Raises `NotFound`/`Forbidden` (the requester must be allowed the kind's action),
    `BadField`, or `Conflict` (asking makes no sense now, or a request for the same thing is
    still open; its id is named).
    """
    kind = _kind(kind_name)
    data = dict(payload or {})
    resource = kind.authorize(vault, principal, subject)
    kind.check(vault, subject, data)
    sealed = _seal(vault, "note", note) if note is not None else None
    now = vault.clock()
    with vault.sessions.begin() as session:
        open_ = session.scalar(
            select(Approval.id).where(
                Approval.kind == kind.name,
                Approval.subject == subject,
                # Only a pending one blocks: one left `approved` by a process that died while
                # running it must not block forever, and each action re-checks when it runs.
                Approval.state == PENDING,
            )
        )
        if open_ is not None:
            raise Conflict(f"approval {open_} already asks for this")
        row = Approval(
            id=new_id(),
            kind=kind.name,
            subject=subject,
            case_id=resource.case_id,
            payload=data,
            sealed_note=sealed,
            state=PENDING,
            quorum=vault.settings.approval_quorum,
            requested_by=principal.subject,
            requested_at=now,
        )
        session.add(row)
        session.flush()
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.APPROVAL_REQUEST,
            item_id=resource.item_id,
            case_id=resource.case_id,
            details={
                **data,
                "approval": row.id,
                "kind": kind.name,
                "subject": subject,
                "quorum": row.quorum,
                "sealed_note": sealed is not None,
            },
            sealed_details=sealed,
            now=now,
        )
        return _record(session, row)


def _load(vault: Vault, approval_id: str) -> Approval:
    with vault.sessions() as session:
        row = session.get(Approval, approval_id)
    if row is None:
        raise NotFound(f"no approval {approval_id}")
    return row


def _claim(session: Session, row: Approval) -> None:
    """Lock `row` while it is pending, in `session`'s transaction; raise `Conflict` if not.

    A conditional UPDATE takes the row lock on PostgreSQL (a concurrent vote waits, then sees
    the state it left) and the write lock on SQLite, so two last approvals cannot both run it.
    """
    claimed = session.execute(
        update(Approval)
        .where(Approval.id == row.id, Approval.state == PENDING)
        .values(state=PENDING)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        state = session.scalar(select(Approval.state).where(Approval.id == row.id))
        raise Conflict(f"approval {row.id} is {state}, no longer pending")


def _answer(
    session: Session,
    row: Approval,
    actor: str,
    vote: str,
    now: datetime,
    sealed_reason: bytes | None = None,
) -> None:
    """Record `actor`'s `vote` on the pending `row`; raise `Conflict` on a second answer."""
    _claim(session, row)
    if session.get(ApprovalVote, (row.id, actor)) is not None:
        raise Conflict(f"{actor} has answered approval {row.id} already")
    session.add(
        ApprovalVote(
            approval_id=row.id, actor=actor, vote=vote, voted_at=now, sealed_reason=sealed_reason
        )
    )
    session.flush()


def _decide(session: Session, approval_id: str, state: str, now: datetime) -> None:
    session.execute(
        update(Approval)
        .where(Approval.id == approval_id)
        .values(state=state, decided_at=now)
        .execution_options(synchronize_session=False)
    )


def approve(vault: Vault, principal: Principal, approval_id: str) -> ApprovalRecord:
    """Add `principal`'s yes; if that reaches the quorum, run the action now, as `principal`.

    Raises `NotFound`; `Forbidden` for the requester (a second person must), a principal the
    policy does not allow to approve or to do the action itself; `Conflict` for a second yes
    by the same person or an approval no longer pending; the action's own error if it is
    refused when it runs (the approval is then `failed`, with a ledger entry saying why).
    """
    row = _load(vault, approval_id)
    authorize(vault.sessions, principal, actions.APPROVAL_APPROVE, _resource(row))
    # Promise 10 holds even under a policy file that forgot `distinct_from`.
    if principal.subject == row.requested_by:
        raise Forbidden("the requester may not approve their own request (a second person must)")
    kind = _kind(row.kind)
    resource = kind.authorize(vault, principal, row.subject)
    now = vault.clock()
    with vault.sessions.begin() as session:
        _answer(session, row, principal.subject, APPROVE, now)
        yes = 1 + int(  # the requester is the first of the quorum
            session.scalar(
                select(func.count())
                .select_from(ApprovalVote)
                .where(ApprovalVote.approval_id == row.id, ApprovalVote.vote == APPROVE)
            )
            or 0
        )
        reached = yes >= row.quorum
        if reached:
            _decide(session, row.id, APPROVED, now)
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.APPROVAL,
            item_id=resource.item_id,
            case_id=row.case_id,
            details={"approval": row.id, "kind": row.kind, "approvals": yes, "quorum": row.quorum},
            now=now,
        )
    if reached:
        _run(vault, principal, kind, row.id, resource.item_id)
    return show(vault, principal, row.id)


def _run(
    vault: Vault, principal: Principal, kind: Kind, approval_id: str, item_id: str | None
) -> None:
    with vault.sessions() as session:
        row = session.get(Approval, approval_id)
        assert row is not None
        record = _record(session, row)
    try:
        outcome: dict[str, Any] = {"state": DONE, **kind.run(vault, principal, record)}
    except VaultError as exc:
        outcome = {"state": FAILED, "error": exc.code, "detail": exc.detail}
        _finish(vault, principal, record, outcome, item_id)
        raise
    _finish(vault, principal, record, outcome, item_id)


def _finish(
    vault: Vault,
    principal: Principal,
    record: ApprovalRecord,
    outcome: dict[str, Any],
    item_id: str | None,
) -> None:
    # A crash before this leaves the approval `approved` with no outcome: the ledger then shows
    # whether the action's own entry (a deletion, say) was written.
    state = outcome.pop("state")
    with vault.sessions.begin() as session:
        session.execute(
            update(Approval)
            .where(Approval.id == record.id, Approval.state == APPROVED)
            .values(state=state, outcome=outcome)
            .execution_options(synchronize_session=False)
        )
        details = {k: v for k, v in outcome.items() if k != "detail"}
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.APPROVAL_OUTCOME,
            item_id=item_id,
            case_id=record.case_id,
            details={"approval": record.id, "kind": record.kind, "state": state, **details},
        )


def deny(vault: Vault, principal: Principal, approval_id: str, reason: str) -> ApprovalRecord:
    """Say no to a pending approval (its requester may withdraw it so too): nothing runs.

    `reason` (free text) is sealed. Raises `NotFound`, `Forbidden`, `BadField` (no reason),
    `Conflict` (no longer pending, or `principal` approved it already).
    """
    row = _load(vault, approval_id)
    authorize(vault.sessions, principal, actions.APPROVAL_DENY, _resource(row))
    sealed = _seal(vault, "reason", reason)
    item_id = row.subject if row.kind in _KINDS and _KINDS[row.kind].on_item else None
    now = vault.clock()
    with vault.sessions.begin() as session:
        _answer(session, row, principal.subject, DENY, now, sealed)
        _decide(session, row.id, DENIED, now)
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.APPROVAL_DENIAL,
            item_id=item_id,
            case_id=row.case_id,
            details={"approval": row.id, "kind": row.kind},
            sealed_details=sealed,
            now=now,
        )
    return show(vault, principal, row.id)


def list_approvals(
    vault: Vault, principal: Principal, state: str | None = None
) -> list[ApprovalRecord]:
    """Return approvals, newest first (at most 500), only those in `state` if given.

    Raises `Forbidden` unless the policy allows `approval.list`; `BadField` for an unknown state.
    """
    if state is not None and state not in STATES:
        raise BadField("state", f"one of {', '.join(STATES)}")
    authorize(vault.sessions, principal, actions.APPROVAL_LIST, Resource(kind=kinds.APPROVAL))
    query = select(Approval).order_by(Approval.requested_at.desc(), Approval.id).limit(LIST_LIMIT)
    if state is not None:
        query = query.where(Approval.state == state)
    with vault.sessions() as session:
        return [_record(session, row) for row in session.scalars(query).all()]


def show(vault: Vault, principal: Principal, approval_id: str) -> ApprovalRecord:
    """Return one approval. Raises `NotFound`, or `Forbidden` without `approval.list`."""
    authorize(vault.sessions, principal, actions.APPROVAL_LIST, Resource(kind=kinds.APPROVAL))
    with vault.sessions() as session:
        row = session.get(Approval, approval_id)
        if row is None:
            raise NotFound(f"no approval {approval_id}")
        return _record(session, row)


def detail(vault: Vault, principal: Principal, approval_id: str) -> ApprovalDetail:
    """Return one approval with its sealed note and denial reason opened.

    Raises `NotFound`, or `Forbidden` without `approval.list` (those who decide on it).
    """
    record = show(vault, principal, approval_id)
    identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    with vault.sessions() as session:
        note = session.scalar(select(Approval.sealed_note).where(Approval.id == approval_id))
        reason = session.scalar(
            select(ApprovalVote.sealed_reason).where(
                ApprovalVote.approval_id == approval_id, ApprovalVote.vote == DENY
            )
        )
    return ApprovalDetail(
        **dataclasses.asdict(record),
        note=str(open_json(note, identity)["note"]) if note else None,
        denial_reason=str(open_json(reason, identity)["reason"]) if reason else None,
    )
