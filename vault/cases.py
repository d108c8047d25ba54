"""Cases: create, list and grant; a case name is free text, so it is sealed (promise 1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import keys
from policies import Principal, Resource, actions, decide, kinds
from vault import ledger
from vault.access import NewItem, authorize, authorize_case, item_resource
from vault.accounts import find_user
from vault.db import Case, CaseGrant
from vault.domain import CONSENT_SCOPES, ROLES
from vault.errors import BadField, Conflict
from vault.ids import new_id
from vault.parts import METADATA_IDENTITY, Vault
from vault.sealing import open_json, seal_json

MAX_NAME = 500
# Roles that are granted on a case (the account roles that read or act on content).
CASE_ROLES = ("therapist", "lawyer", "advocate", "commission")


@dataclass(frozen=True)
class CaseView:
    """A case as its readers see it, with the name unsealed."""

    id: str
    name: str
    created_at: datetime


def _metadata_identity(vault: Vault) -> str:
    return vault.keyring.secret(METADATA_IDENTITY).decode("ascii")


def create_case(vault: Vault, principal: Principal, name: str) -> CaseView:
    """Create a case named `name`; a therapist who creates one is granted on it.

    Raises `BadField`, or `Forbidden` if the policy refuses.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise BadField("name", f"1 to {MAX_NAME} characters")
    authorize(vault.sessions, principal, actions.CASE_CREATE, Resource(kind=kinds.CASE))
    identity = _metadata_identity(vault)
    now = vault.clock()
    case = Case(
        id=new_id(),
        sealed_name=seal_json({"name": name}, keys.recipient_of(identity)),
        created_by=principal.subject,
        created_at=now,
    )
    with vault.sessions.begin() as session:
        session.add(case)
        session.flush()
        # The default policy: "Therapists open a case for a new survivor (the vault grants the
        # creator on it)". No role is named here (issue 7: no inline role checks): the creator
        # is granted each of their case roles with which the policy lets them deposit into it.
        # Custodians are never granted content roles by creating a case.
        for role in sorted(principal.roles & set(CASE_ROLES)):
            granted = Principal(principal.subject, principal.roles, {case.id: frozenset({role})})
            deposit = item_resource(NewItem(case.id, CONSENT_SCOPES))
            if decide(granted, actions.ITEM_DEPOSIT, deposit):
                _grant(session, case.id, principal.subject, role, principal, now)
    return CaseView(case.id, name, case.created_at)


def list_cases(vault: Vault, principal: Principal) -> list[CaseView]:
    """Return the cases `principal` may read, oldest first.

    Raises `Forbidden` if the principal may not list cases at all.
    """
    authorize(vault.sessions, principal, actions.CASE_LIST, Resource(kind=kinds.CASE))
    identity = _metadata_identity(vault)
    with vault.sessions() as session:
        rows = session.scalars(select(Case).order_by(Case.created_at, Case.id)).all()
    return [
        CaseView(row.id, str(open_json(row.sealed_name, identity)["name"]), row.created_at)
        for row in rows
        if decide(principal, actions.CASE_READ, Resource(kind=kinds.CASE, case_id=row.id))
    ]


def grant(vault: Vault, principal: Principal, case_id: str, user: str, role: str) -> None:
    """Grant `role` on `case_id` to the account `user`, and record it in the ledger.

    Raises `BadField` (role), `NotFound` (case or account), `Conflict` (already granted) or
    `Forbidden`.
    """
    if role not in CASE_ROLES:
        raise BadField("role", f"one of {', '.join(CASE_ROLES)}")
    assert set(CASE_ROLES) <= set(ROLES)
    # Decided before the account is looked up: "no account" must not tell a caller who may not
    # see the case that it exists (issue 7 point 6).
    resource = Resource(kind=kinds.CASE, case_id=case_id, grantee=user)
    authorize_case(vault.sessions, principal, actions.CASE_GRANT, resource)
    with vault.sessions() as session:
        find_user(session, user)
    with vault.sessions.begin() as session:
        if session.get(CaseGrant, (case_id, user, role)) is not None:
            raise Conflict(f"{user} already has {role} on case {case_id}")
        _grant(session, case_id, user, role, principal, vault.clock())


def _grant(
    session: Session, case_id: str, user: str, role: str, by: Principal, now: datetime
) -> None:
    session.add(
        CaseGrant(case_id=case_id, user_name=user, role=role, granted_by=by.subject, granted_at=now)
    )
    ledger.append(
        session,
        actor=by,
        action=ledger.actions.GRANT,
        case_id=case_id,
        details={"grantee": user, "role": role},
        now=now,
    )
