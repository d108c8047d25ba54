"""Server-side web sessions: opened at sign-in, checked on every page, killed at sign-out.

The browser holds only a random secret in an HttpOnly, SameSite=Strict cookie; the database
holds its SHA-256, the account's immutable id and generation, the CSRF token of the session's
forms and when it was last seen. A session dies on the server: after `web_session_idle_seconds`
without a request (counted from the last request `seen_at` recorded: see `seen_interval`),
`web_session_max_seconds` after it opened, at sign-out, and as soon as the account is disabled
or changes role (its generation moves on, as for tokens). Its public `id` (not the secret) is
the credential the ledger names for what the session did (promise 9).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from policies import Principal
from vault import ledger
from vault.accounts import account_principal
from vault.db import User
from vault.db.web_tables import AccountSecret, WebFormUse, WebSession
from vault.errors import NotFound
from vault.ids import new_id
from vault.parts import Vault

ACTIVE: Final = "active"
SECOND_FACTOR: Final = "second-factor"  # the password was right; a TOTP code is still due
ENROL: Final = "enrol"  # the password was right; a TOTP factor must be set up first
# `seen_at` is written at most this often (`seen_interval`).
SEEN_INTERVAL_SECONDS: Final = 60


@dataclass(frozen=True)
class Opened:
    """A session just opened: its public id and the cookie's secret (**the credential**)."""

    id: str
    secret: str

    def __repr__(self) -> str:
        return f"Opened(id={self.id})"


@dataclass(frozen=True)
class Current:
    """The session a request's cookie names: who, in which state, its CSRF token."""

    id: str
    account_id: str
    name: str
    role: str
    state: str
    csrf: str
    language: str | None
    principal: Principal


class Ended(Exception):
    """The cookie names no live session (unknown, expired, signed out, account changed)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("session ended")
        self.expired = expired


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


def open_session(
    vault: Vault,
    account_id: str,
    generation: int,
    state: str,
    *,
    second_factor: bool,
    via: str = "web",
) -> Opened:
    """Open a session for the account in `state`; an `active` one is a `sign in` entry.

    Raises `NotFound` if the account is gone or disabled.
    """
    now = vault.clock()
    opened = Opened(new_id(), secrets.token_urlsafe(32))
    with vault.sessions.begin() as session:
        user = session.get(User, account_id)
        if user is None or user.disabled or user.generation != generation:
            raise NotFound("no such account")
        # Sessions of this account that timed out unseen end now (their cookie never came back).
        for stale in session.scalars(select(WebSession).where(WebSession.account_id == account_id)):
            if _timed_out(vault, stale, now):
                _end(session, stale, user, "expired", now)
        session.add(
            WebSession(
                id=opened.id,
                secret_sha256=_sha256(opened.secret),
                account_id=account_id,
                generation=generation,
                csrf=secrets.token_urlsafe(32),
                state=state,
                created_at=now,
                seen_at=now,
            )
        )
        if state == ACTIVE:
            _sign_in_entry(session, user, opened.id, second_factor, now, via)
    return opened


def _sign_in_entry(
    session: Session,
    user: User,
    session_id: str,
    second_factor: bool,
    now: datetime,
    via: str = "web",
) -> None:
    ledger.append(
        session,
        actor=user.name,
        action=ledger.actions.SIGN_IN,
        details={
            "account": user.name,
            "account_id": user.id,
            "generation": user.generation,
            "via": via,
            "session": session_id,
            "second_factor": second_factor,
        },
        now=now,
    )


def activate(vault: Vault, session_id: str, *, second_factor: bool) -> str:
    """Make a session waiting for its second factor `active`, with a fresh secret (the cookie
    changes when the privilege does); return the new secret. Writes the `sign in` entry."""
    now = vault.clock()
    secret = secrets.token_urlsafe(32)
    with vault.sessions.begin() as session:
        row = session.get(WebSession, session_id, with_for_update=True)
        user = session.get(User, row.account_id) if row is not None else None
        if row is None or user is None:
            raise NotFound("no such session")
        row.state, row.secret_sha256, row.seen_at = ACTIVE, _sha256(secret), now
        row.csrf = secrets.token_urlsafe(32)
        _sign_in_entry(session, user, row.id, second_factor, now)
    return secret


def resolve(vault: Vault, secret: str | None) -> Current:
    """Return the live session whose cookie secret is `secret`, and mark it seen.

    Raises `Ended` (with `expired` when it timed out, so the page can say so).
    """
    if not secret or len(secret) > 128:
        raise Ended(expired=False)
    now = vault.clock()
    with vault.sessions.begin() as session:
        row = session.scalar(select(WebSession).where(WebSession.secret_sha256 == _sha256(secret)))
        if row is None:
            raise Ended(expired=False)
        timed_out = _timed_out(vault, row, now)
        user = session.get(User, row.account_id)
        ended = timed_out or user is None or user.disabled or user.generation != row.generation
        if ended:
            # Ended here and committed with its `sign out` entry, before `Ended` is raised
            # (raising inside the transaction would roll the ending back).
            _end(session, row, user, "expired" if timed_out else "account changed", now)
        else:
            if now - row.seen_at >= seen_interval(vault):
                row.seen_at = now  # else no write: the page is a read transaction
            current = _current(session, row, user)
    if ended:
        raise Ended(expired=timed_out)
    return current


def seen_interval(vault: Vault) -> timedelta:
    """How often a session's `seen_at` is written: 60 s, or a tenth of the idle timeout when
    that is shorter.

    Writing it on every request made each page view a write transaction. `seen_at` is now the
    time of the first request of such an interval, so it lags the last request by less than
    the interval, and the idle timeout, measured from `seen_at`, ends a session between
    `idle - interval` and `idle` after its last request: earlier by at most a minute, never
    later.
    """
    idle = vault.settings.web_session_idle_seconds
    return timedelta(seconds=min(SEEN_INTERVAL_SECONDS, idle / 10))


def _timed_out(vault: Vault, row: WebSession, now: datetime) -> bool:
    settings = vault.settings
    idle = now - row.seen_at > timedelta(seconds=settings.web_session_idle_seconds)
    old = now - row.created_at > timedelta(seconds=settings.web_session_max_seconds)
    return idle or old


def _current(session: Session, row: WebSession, user: User | None) -> Current:
    assert user is not None
    language = session.scalar(
        select(AccountSecret.language).where(AccountSecret.account_id == user.id)
    )
    principal, _ = account_principal(session, user.name)
    # Promise 9: what the session does is recorded under its public id.
    principal = replace(principal, credential=f"session:{row.id}")
    return Current(row.id, user.id, user.name, user.role, row.state, row.csrf, language, principal)


def _end(session: Session, row: WebSession, user: User | None, reason: str, now: datetime) -> None:
    was_active = row.state == ACTIVE
    session.execute(delete(WebFormUse).where(WebFormUse.session_id == row.id))
    session.delete(row)
    if was_active:
        ledger.append(
            session,
            actor=user.name if user is not None else "anonymous",
            action=ledger.actions.SIGN_OUT,
            details={
                "account": user.name if user is not None else None,
                "account_id": row.account_id,
                "session": row.id,
                "reason": reason,
            },
            now=now,
        )


def close(vault: Vault, secret: str | None, reason: str) -> bool:
    """Kill the session of `secret` on the server; return whether there was one."""
    if not secret or len(secret) > 128:
        return False
    now = vault.clock()
    with vault.sessions.begin() as session:
        row = session.scalar(select(WebSession).where(WebSession.secret_sha256 == _sha256(secret)))
        if row is None:
            return False
        _end(session, row, session.get(User, row.account_id), reason, now)
        return True


def claim_form(vault: Vault, session_id: str, nonce: str) -> bool:
    """Record that the session sent the form `nonce`; False if it was sent before."""
    if not nonce or len(nonce) > 64:
        return False
    try:
        with vault.sessions.begin() as session:
            session.add(WebFormUse(nonce=nonce, session_id=session_id, used_at=vault.clock()))
    except IntegrityError:
        return False
    return True


def release_form(vault: Vault, nonce: str) -> None:
    """Forget a claimed form whose action failed, so the same form may be sent again."""
    with vault.sessions.begin() as session:
        session.execute(delete(WebFormUse).where(WebFormUse.nonce == nonce))
