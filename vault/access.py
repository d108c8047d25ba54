"""Ask `policies.decide` before every action, and record each refusal in the custody ledger."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from policies import Allow, Principal, Resource, decide
from vault import ledger
from vault.errors import Forbidden


def authorize(
    sessions: sessionmaker[Session], principal: Principal, action: str, resource: Resource
) -> Allow:
    """Return the policy's `Allow` for `action` on `resource`.

    Raises `Forbidden` with the policy's reason otherwise, after committing an `access denied`
    ledger entry in its own transaction (DESIGN.md promise 3: denied attempts are events).
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
    raise Forbidden(reason)
