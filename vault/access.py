"""Ask `policies.decide` before every action, and record each refusal in the custody ledger."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from policies import Allow, Principal, Resource, actions, decide, kinds
from vault import ledger
from vault.db import Case, Item
from vault.errors import Forbidden, NotFound
from vault.ids import ID_SHAPE as ID_SHAPE  # re-exported: it lives in vault.ids
from vault.parts import Vault

# ID_SHAPE is what `vault.ids.new_id` makes: an id of any other shape names no item or case, so
# it is not looked up.
NO_SUCH_ITEM = "no such item"
NO_SUCH_CASE = "no such case"
_DECIDING = select(Item.id, Item.case_id, Item.depositor, Item.consent)


def authorize(
    sessions: sessionmaker[Session], principal: Principal, action: str, resource: Resource
) -> Allow:
    """Return the policy's `Allow` for `action` on `resource`.

    Otherwise commit an `access denied` ledger entry in its own transaction (DESIGN.md promise
    3: denied attempts are events; the refused request changes nothing else), then raise:
    `NotFound` with the very words used for an id that does not exist when the principal may not
    even see the item or case (issue 7 point 6: probing ids must not tell "exists" from "does
    not"), `Forbidden` with the policy's reason when it may see it but not do this.
    """
    decision = decide(principal, action, resource)
    if not isinstance(decision, Allow):
        refuse(sessions, principal, action, resource, decision.reason)
    return decision


def authorize_item(
    sessions: sessionmaker[Session],
    principal: Principal,
    action: str,
    item_id: str,
    *,
    needs_sight: bool = False,
) -> tuple[Item, Allow]:
    """Load item `item_id` and return it with the policy's `Allow` for `action` on it.

    An unknown id is refused exactly like an item the principal may not see: the same work (the
    policy's decisions and an `access denied` ledger entry in its own transaction, reason "no
    such item") and the same `NotFound`, so neither the answer, nor the ledger's growth, nor the
    time taken tells "hidden" from "missing" (issue 16). With `needs_sight`, an allowed action is
    still refused as not found when the principal may not see the item (`item.read` or
    `item.status`): only those who see an item speak for its survivor (consent, identity fields,
    redacted rendition), whatever a policy file says. Raises `NotFound` or `Forbidden`.
    """
    well_formed = ID_SHAPE.fullmatch(item_id) is not None
    row = None
    if well_formed:
        # Only what the decision needs: a refusal must cost the same whether a row came back or
        # not, so the whole item (a blob, dates to parse) is loaded only once it is allowed.
        with sessions() as session:
            row = session.execute(_DECIDING.where(Item.id == item_id)).one_or_none()
    if row is None:
        # A stand-in, decided like a real item so that this path costs what a refusal costs; an
        # id of another shape is left out of the ledger (it may be any text a prober typed).
        stand_in = Resource(kind=kinds.ITEM, item_id=item_id if well_formed else None)
        decide(principal, action, stand_in)
        refuse(sessions, principal, action, stand_in, NO_SUCH_ITEM, f"no item {item_id}")
    resource = item_resource(row)
    decision = decide(principal, action, resource)
    if not isinstance(decision, Allow):
        refuse(sessions, principal, action, resource, decision.reason)
    if needs_sight and concealed(principal, resource) is not None:
        reason = f"{action} denied for {principal.subject}: the item is not visible to them"
        refuse(sessions, principal, action, resource, reason, f"no item {item_id}")
    with sessions() as session:
        item = session.get(Item, item_id)
    if item is None:  # deleted since: items are never deleted, but say so rather than crash
        raise NotFound(f"no item {item_id}")
    return item, decision


def authorize_case(
    sessions: sessionmaker[Session], principal: Principal, action: str, resource: Resource
) -> Allow:
    """Return the policy's `Allow` for `action` on `resource` in the case `resource.case_id`.

    An unknown case is refused like one the principal may not see: a decision, an `access
    denied` entry (reason "no such case") and the same `NotFound("no case <id>")`, so a prober
    tells neither by the answer nor by the ledger's growth nor by the time. Otherwise as
    `authorize`. Raises `NotFound` or `Forbidden`.
    """
    case_id = resource.case_id or ""
    well_formed = ID_SHAPE.fullmatch(case_id) is not None
    found = None
    if well_formed:
        with sessions() as session:
            found = session.execute(select(Case.id).where(Case.id == case_id)).one_or_none()
    if found is None:
        stand_in = Resource(kind=kinds.CASE, case_id=case_id if well_formed else None)
        decide(principal, action, resource)
        refuse(sessions, principal, action, stand_in, NO_SUCH_CASE, f"no case {case_id}")
    return authorize(sessions, principal, action, resource)


def refuse(
    sessions: sessionmaker[Session],
    principal: Principal,
    action: str,
    resource: Resource,
    reason: str,
    not_found: str | None = None,
) -> NoReturn:
    """Record a refusal of `action` on `resource` for `reason` in its own transaction, then raise
    `NotFound` (`not_found`, or the words for an unknown id when `principal` may not see
    `resource`) or `Forbidden(reason)`."""
    with sessions.begin() as session:
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.ACCESS_DENIED,
            item_id=resource.item_id,
            case_id=resource.case_id,
            details={"attempted": action, "reason": reason},
        )
    hidden = concealed(principal, resource)  # computed on every path: the same work each time
    if not_found is not None or hidden is not None:
        raise NotFound(not_found or str(hidden))
    raise Forbidden(reason)


def may_read_entry(
    sessions: sessionmaker[Session], principal: Principal, item_id: str | None
) -> bool:
    """Return whether `principal` may read a ledger entry about `item_id` (None: about no item).

    Those the policy allows `ledger.read` (auditors) read every entry; anyone else only entries
    about an item they may see (`item.read` or `item.status`), since an entry names actors,
    cases, items, digests, consent scopes and the reasons of refusals (issue 16).
    """
    if decide(principal, actions.LEDGER_READ, Resource(kind=kinds.LEDGER)):
        return True
    if item_id is None or not ID_SHAPE.fullmatch(item_id):
        return False
    with sessions() as session:
        item = session.get(Item, item_id)
    return item is not None and concealed(principal, item_resource(item)) is None


class ItemFields(Protocol):
    """What a policy decision reads of an item: an `Item`, a row of just these columns, or a
    `NewItem` (no id yet)."""

    @property
    def id(self) -> str | None: ...
    @property
    def case_id(self) -> str: ...
    @property
    def depositor(self) -> str | None: ...
    @property
    def consent(self) -> Collection[str]: ...


@dataclass(frozen=True)
class NewItem:
    """An item not stored yet, as a decision sees it: the one a deposit would make (its
    depositor, the consent it declares), or any item of a case (no depositor)."""

    case_id: str
    consent: Collection[str]
    depositor: str | None = None
    id: None = None


def item_resource(item: ItemFields) -> Resource:
    """Return the policy resource of `item`, with its consent as stored now.

    The one place an item's policy resource is built, for stored items and new ones alike, so
    every decision about an item sees the same attributes.
    """
    return Resource(
        kind=kinds.ITEM,
        case_id=item.case_id,
        item_id=item.id,
        depositor=item.depositor,
        consent=frozenset(item.consent),
    )


def concealed(principal: Principal, resource: Resource) -> str | None:
    """Return the not-found message to answer with if `principal` may not see `resource` at all.

    An item is visible to whoever may read or see the status of it; a case to whoever may read
    it. None: the resource is visible (or names no id), so a refusal may say why.
    """
    if resource.kind == kinds.ITEM and resource.item_id:
        if decide(principal, actions.ITEM_READ, resource) or decide(
            principal, actions.ITEM_STATUS, resource
        ):
            return None
        return f"no item {resource.item_id}"
    if resource.case_id and resource.kind in (kinds.CASE, kinds.ITEM):
        case = Resource(kind=kinds.CASE, case_id=resource.case_id)
        if decide(principal, actions.CASE_READ, case):
            return None
        return f"no case {resource.case_id}"
    return None


@dataclass(kw_only=True)
class CaseAudit:
    """What an `audited_case` block works with: its transaction, the policy's answer, the
    entry's `details` and `sealed` details, and the time.

    The block may add to `details`, set `sealed` (bytes already sealed, as `ledger.append`
    takes them), call `skip()` when it did nothing to record (an unchanged hold, a redacted read
    that opened nothing), or `record(**more)` to append the entry at that point rather than when
    the block ends."""

    session: Session
    allowed: Allow
    details: dict[str, object]
    now: datetime
    sealed: bytes | None = None
    skipped: bool = False
    recorded: int = 0
    principal: Principal = field(repr=False)
    entry: str
    item_id: str | None = None
    case_id: str | None = None

    def skip(self) -> None:
        """Record no entry for this block (it read or changed nothing)."""
        self.skipped = True

    def record(self, **more: object) -> None:
        """Append the entry now, its details `details` with `more`, in the block's transaction.

        For a block whose later work must follow the entry (appending takes the ledger's writers'
        lock), or that records one entry per thing it changed. Once it has recorded, the block
        ends with no further entry.
        """
        ledger.append(
            self.session,
            actor=self.principal,
            action=self.entry,
            item_id=self.item_id,
            case_id=self.case_id,
            details={**self.details, **more},
            sealed_details=self.sealed,
            now=self.now,
        )
        self.recorded += 1


@dataclass(kw_only=True)
class Audit(CaseAudit):
    """What an `audited` block works with: as `CaseAudit`, plus the item."""

    item: Item


@contextlib.contextmanager
def audited(
    vault: Vault,
    principal: Principal,
    action: str,
    item_id: str,
    *,
    entry: str,
    details: Mapping[str, object],
    needs_sight: bool = False,
) -> Iterator[Audit]:
    """Authorise `action` on item `item_id` for `principal` (`authorize_item`: a refusal is
    its own ledger entry, then `NotFound` or `Forbidden`), then run the block in one transaction
    that ends with the custody entry `entry` (`ledger.actions`) about the item, with `details`.

    Authorise, record, act in one place, so a new read cannot forget its entry: the entry
    commits with what the block did, or not at all when the block raises (or calls `skip()`).
    A check the block makes before it touches `audit.session` may still refuse (`refuse`,
    `authorize`): that refusal commits its own entry, as any refusal does.
    """
    item, allowed = authorize_item(
        vault.sessions, principal, action, item_id, needs_sight=needs_sight
    )
    now = vault.clock()
    with vault.sessions.begin() as session:
        audit = Audit(
            session=session,
            item=item,
            allowed=allowed,
            details=dict(details),
            now=now,
            principal=principal,
            entry=entry,
            item_id=item.id,
            case_id=item.case_id,
        )
        yield audit
        _close(audit)


@contextlib.contextmanager
def audited_case(
    vault: Vault,
    principal: Principal,
    action: str,
    case: Resource,
    *,
    entry: str,
    details: Mapping[str, object],
) -> Iterator[CaseAudit]:
    """As `audited`, for `action` on the case `case` (`authorize_case`: an unknown case is
    refused like a hidden one): the entry `entry` is about the case and names no item."""
    allowed = authorize_case(vault.sessions, principal, action, case)
    now = vault.clock()
    with vault.sessions.begin() as session:
        audit = CaseAudit(
            session=session,
            allowed=allowed,
            details=dict(details),
            now=now,
            principal=principal,
            entry=entry,
            case_id=case.case_id,
        )
        yield audit
        _close(audit)


def _close(audit: CaseAudit) -> None:
    # The block returned: its entry joins its work in the transaction, unless it recorded
    # already or had nothing to record.
    if not audit.skipped and not audit.recorded:
        audit.record()
