"""Local accounts: each has a name (operator data, in the clear), an immutable id, one role and a
generation.

DESIGN.md promise 9: creating an account, changing its role and disabling or enabling it are
ledger entries in the same transaction as the change. The generation grows on every role change
and every disabling, and the vault's tokens name it, so such a change cuts off every older token
(re-enabling an account does not revive them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from policies import Principal
from vault import ledger
from vault.db import CaseGrant, User
from vault.db.credential_tables import AccessToken
from vault.domain import ROLES
from vault.errors import BadField, Conflict, NotFound, UnknownAccount
from vault.ids import new_id

# Account names appear in tokens and ledger entries: keep them to a safe, printable alphabet.
# Always `fullmatch`: with `match`, `$` also matches before a final newline, so "boss\n" passed
# and displayed as "boss".
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


# The ledger actor of what is done offline, with the passphrase, rather than by an account
# through the API. Spaces and brackets keep it apart from every account name (`NAME`).
OFFLINE_ACTOR = "keyholder (offline)"
OFFLINE, API = "offline", "api"  # how a change was made, in its ledger entry's `via`


def add_user(
    session: Session,
    name: str,
    role: str,
    now: datetime,
    *,
    actor: ledger.Actor = OFFLINE_ACTOR,
    via: str = OFFLINE,
) -> User:
    """Add the account `name` with `role` in `session`'s transaction, with its ledger entry.

    Raises `BadField` on a malformed name or unknown role, `Conflict` if the name is taken.
    """
    if not NAME.fullmatch(name):
        raise BadField("name", "use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    if role not in ROLES:
        raise BadField("role", f"one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"the account {name!r} exists")
    user = User(id=new_id(), name=name, role=role, created_at=now, disabled=False, generation=1)
    session.add(user)
    session.flush()
    _record(session, ledger.actions.ACCOUNT_CREATION, user, actor, via, now, {"role": role})
    return user


def change_role(
    session: Session, name: str, role: str, now: datetime, *, actor: ledger.Actor, via: str
) -> bool:
    """Give the account `name` the role `role`; return whether it changed.

    A change starts a new generation: every token issued before is refused from the next
    request on. Raises `BadField` on an unknown role, `NotFound` if there is no such account.
    """
    if role not in ROLES:
        raise BadField("role", f"one of {', '.join(ROLES)}")
    user = _account(session, name)
    if user.role == role:
        return False
    previous, user.role, user.generation = user.role, role, user.generation + 1
    _record(
        session,
        ledger.actions.ROLE_CHANGE,
        user,
        actor,
        via,
        now,
        {"role": role, "previous": previous},
    )
    return True


def set_disabled(
    session: Session, name: str, disabled: bool, now: datetime, *, actor: ledger.Actor, via: str
) -> bool:
    """Disable (or enable) the account `name`; return whether it changed.

    Disabling starts a new generation, so enabling again never revives a token issued before.
    Raises `NotFound` if there is no such account.
    """
    user = _account(session, name)
    if user.disabled == disabled:
        return False
    user.disabled = disabled
    if disabled:
        user.generation += 1
    _record(session, ledger.actions.ACCOUNT_STATE, user, actor, via, now, {"disabled": disabled})
    return True


def _account(session: Session, name: str) -> User:
    # FOR UPDATE: two changes of one account must not both read the same generation.
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    if user is None:
        raise UnknownAccount(f"no account {name!r}")
    return user


def _record(
    session: Session,
    action: str,
    user: User,
    actor: ledger.Actor,
    via: str,
    now: datetime,
    details: dict[str, object],
) -> None:
    ledger.append(
        session,
        actor=actor,
        action=action,
        details={
            "account": user.name,
            "account_id": user.id,
            "generation": user.generation,
            "via": via,
            **details,
        },
        now=now,
    )


def list_users(session: Session) -> Sequence[User]:
    """Return every account, by name."""
    return session.scalars(select(User).order_by(User.name)).all()


def find_user(session: Session, name: str) -> User:
    """Return the enabled account `name`. Raises `NotFound` if there is none."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled:
        raise UnknownAccount(f"no account {name!r}")
    return user


# Built once: it runs on every API request with an OIDC token (`account_principal`).
_PRINCIPAL_ROWS = (
    select(User.role, User.disabled, User.id, CaseGrant.case_id, CaseGrant.role)
    .outerjoin(CaseGrant, CaseGrant.user_name == User.name)
    .where(User.name == bindparam("name"))
)


def principal_named(session: Session, name: str) -> Principal:
    """Return the principal of the enabled account `name` (as `principal_of(find_user(...))`),
    in one query. Raises `NotFound` if there is none."""
    return account_principal(session, name)[0]


def account_principal(session: Session, name: str) -> tuple[Principal, str]:
    """Return the principal of the enabled account `name` and the account's immutable id, in
    one query. Raises `NotFound` if there is none."""
    rows = session.connection().execute(_PRINCIPAL_ROWS, {"name": name}).all()
    if not rows or rows[0][1]:
        raise UnknownAccount(f"no account {name!r}")
    principal = _principal(name, rows[0][0], [(case, role) for _, _, _, case, role in rows])
    return principal, str(rows[0][2])


# Built once: it runs on every API request with a vault token (`principal_for_token`). One
# indexed lookup of each table: the account by its unique name, the token by its id.
_TOKEN_ROWS = (
    select(User.role, CaseGrant.case_id, CaseGrant.role)
    .join(
        AccessToken,
        and_(
            AccessToken.jti == bindparam("jti"),
            AccessToken.account_id == User.id,
            AccessToken.generation == User.generation,
            AccessToken.revoked_at.is_(None),
        ),
    )
    .outerjoin(CaseGrant, CaseGrant.user_name == User.name)
    .where(
        User.name == bindparam("name"),
        User.id == bindparam("uid"),
        User.generation == bindparam("gen"),
        User.disabled.is_(False),
    )
)


def principal_for_token(
    session: Session, name: str, token_id: str, account_id: str, generation: int
) -> Principal:
    """Return the principal a vault token speaks for, in one query.

    The token must be registered (issued by this vault), not revoked, and name the account's
    id and current generation; the account must be enabled. Raises `NotFound` otherwise, with
    one of a fixed set of reasons (`refusal_reason`).
    """
    params = {"name": name, "jti": token_id, "uid": account_id, "gen": generation}
    rows = session.connection().execute(_TOKEN_ROWS, params).all()
    if not rows:
        raise NotFound(refusal_reason(session, name, token_id, account_id, generation))
    return _principal(name, rows[0][0], [(case, role) for _, case, role in rows])


def refusal_reason(
    session: Session, name: str, token_id: str, account_id: str, generation: int
) -> str:
    """Return why a vault token is refused, for the ledger: one of a fixed set of phrases."""
    user = session.scalar(select(User).where(User.name == name))
    token = session.get(AccessToken, token_id)
    if user is None:
        return "unknown account"
    if token is None:
        return "token not issued by this vault"
    if token.revoked_at is not None:
        return "token revoked"
    if user.disabled:
        return "account disabled"
    if user.id != account_id or token.account_id != user.id:
        return "account replaced since the token was issued"
    return "account changed since the token was issued"


def _principal(name: str, role: str, grants: list[tuple[str | None, str | None]]) -> Principal:
    by_case: dict[str, set[str]] = {}
    for case_id, case_role in grants:
        if case_id is not None and case_role is not None:
            by_case.setdefault(case_id, set()).add(case_role)
    return Principal(
        subject=name,
        roles=frozenset({role}),
        grants={case: frozenset(roles) for case, roles in by_case.items()},
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
