"""Case grants: revoke a principal's roles on a case (granting lives in `vault.cases`).

Grants are read from the database on every request (`vault.accounts.principal_named`), never from
the token, so a revocation takes effect on the caller's next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from policies import Principal, Resource, actions, kinds
from vault import ledger
from vault.access import audited_case, authorize_case
from vault.db import CaseGrant
from vault.errors import NotFound
from vault.parts import Vault


@dataclass(frozen=True)
class GrantView:
    """One role granted on a case: to whom, by whom, when."""

    case_id: str
    user: str
    role: str
    granted_by: str
    granted_at: datetime


def revoke(
    vault: Vault, principal: Principal, case_id: str, user: str, role: str | None = None
) -> list[str]:
    """Revoke `role` (every role when None) of account `user` on `case_id`; return the roles.

    Each revoked role is its own ledger entry, committed with the deletion. Raises `NotFound`
    (no such case, or no such grant) or `Forbidden`.
    """
    resource = Resource(kind=kinds.CASE, case_id=case_id, grantee=user)
    with audited_case(
        vault,
        principal,
        actions.CASE_REVOKE,
        resource,
        entry=ledger.actions.REVOCATION,
        details={"grantee": user},
    ) as audit:
        query = select(CaseGrant).where(CaseGrant.case_id == case_id, CaseGrant.user_name == user)
        if role is not None:
            query = query.where(CaseGrant.role == role)
        rows = audit.session.scalars(query.with_for_update()).all()
        if not rows:
            raise NotFound(f"{user} holds no {role or 'role'} on case {case_id}")
        for row in sorted(rows, key=lambda r: r.role):
            audit.session.delete(row)
            audit.record(role=row.role)  # one entry per role revoked
        return sorted(row.role for row in rows)


def list_grants(vault: Vault, principal: Principal, case_id: str) -> list[GrantView]:
    """Return the grants on `case_id`, for those who may grant or revoke on it.

    Raises `NotFound` or `Forbidden`.
    """
    resource = Resource(kind=kinds.CASE, case_id=case_id)
    authorize_case(vault.sessions, principal, actions.CASE_REVOKE, resource)
    with vault.sessions() as session:
        rows = session.scalars(
            select(CaseGrant)
            .where(CaseGrant.case_id == case_id)
            .order_by(CaseGrant.user_name, CaseGrant.role)
        ).all()
    return [GrantView(r.case_id, r.user_name, r.role, r.granted_by, r.granted_at) for r in rows]
