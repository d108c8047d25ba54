"""Local accounts: each has a name (operator data, in the clear) and one role."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from policies import Principal
from vault.db import CaseGrant, User
from vault.domain import ROLES
from vault.errors import BadField, Conflict, NotFound
from vault.ids import new_id

# Account names appear in tokens and ledger entries: keep them to a safe, printable alphabet.
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def add_user(session: Session, name: str, role: str, now: datetime) -> User:
    """Add the account `name` with `role` in `session`'s transaction.

    Raises `BadField` on a malformed name or unknown role, `Conflict` if the name is taken.
    """
    if not NAME.match(name):
        raise BadField("name", "use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    if role not in ROLES:
        raise BadField("role", f"one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"the account {name!r} exists")
    user = User(id=new_id(), name=name, role=role, created_at=now, disabled=False)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> Sequence[User]:
    """Return every account, by name."""
    return session.scalars(select(User).order_by(User.name)).all()


def find_user(session: Session, name: str) -> User:
    """Return the enabled account `name`. Raises `NotFound` if there is none."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled:
        raise NotFound(f"no account {name!r}")
    return user


# Built once: it runs on every API request (`principal_named`).
_PRINCIPAL_ROWS = (
    select(User.role, User.disabled, CaseGrant.case_id, CaseGrant.role)
    .outerjoin(CaseGrant, CaseGrant.user_name == User.name)
    .where(User.name == bindparam("name"))
)


def principal_named(session: Session, name: str) -> Principal:
    """Return the principal of the enabled account `name` (as `principal_of(find_user(...))`),
    in one query: it runs on every API request. Raises `NotFound` if there is none."""
    rows = session.connection().execute(_PRINCIPAL_ROWS, {"name": name}).all()
    if not rows or rows[0][1]:
        raise NotFound(f"no account {name!r}")
    grants: dict[str, set[str]] = {}
    for _, _, case_id, role in rows:
        if case_id is not None:
            grants.setdefault(case_id, set()).add(role)
    return Principal(
        subject=name,
        roles=frozenset({rows[0][0]}),
        grants={case: frozenset(roles) for case, roles in grants.items()},
    )


def principal_of(session: Session, user: User) -> Principal:
    """Return the policy principal of `user`: its account role and its case grants.

    The subject is the account name (unique, and what the ledger shows as actor).
    """
    grants: dict[str, set[str]] = {}
    rows = session.execute(
        select(CaseGrant.case_id, CaseGrant.role).where(CaseGrant.user_name == user.name)
    )
    for case_id, role in rows:
        grants.setdefault(case_id, set()).add(role)
    return Principal(
        subject=user.name,
        roles=frozenset({user.role}),
        grants={case: frozenset(roles) for case, roles in grants.items()},
    )
