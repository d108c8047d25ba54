"""Ask `policies.decide` before every action, and record each refusal in the custody ledger."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from policies import Allow, Principal, Resource, actions, decide, kinds
from vault import ledger
from vault.errors import Forbidden, NotFound


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
    if isinstance(decision, Allow):
        return decision
    reason = str(getattr(decision, "reason", "denied"))
    with sessions.begin() as session:
        ledger.append(
            session,
            actor=principal.subject,
            action=ledger.actions.ACCESS_DENIED,
            item_id=resource.item_id,
            case_id=resource.case_id,
            details={"attempted": action, "reason": reason},
        )
    hidden = concealed(principal, resource)
    if hidden is not None:
        raise NotFound(hidden)
    raise Forbidden(reason)


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
