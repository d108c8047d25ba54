"""Credentials: issuing, listing and revoking the vault's tokens, managing accounts through the
API, and recording an OpenID Connect principal's first use (DESIGN.md promise 9).

Every credential is accountable: each token is registered (`access_tokens`) and its issue is a
`token issuance` ledger entry in the same transaction, saying who issued it, for whom (account
name, immutable id, generation), its id, key and expiry, and whether it was made offline with
the passphrase or through the API. Every credential can be cut off: a revocation, a disabled
account or a role change acts on the next request of every process, because each request
checks the register in the database (`vault.accounts.principal_for_token`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import keys
from policies import Principal, Resource, actions, kinds
from vault import ledger, token_keys
from vault.access import authorize
from vault.accounts import (
    API,
    OFFLINE,
    OFFLINE_ACTOR,
    change_role,
    find_user,
    principal_of,
    set_disabled,
)
from vault.db import User
from vault.db.credential_tables import AccessToken, OidcPrincipal, TokenKey
from vault.errors import BadField, Conflict, NotFound
from vault.parts import Vault
from vault.tokens import issue_token


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: the bearer string (**secret**), its id, account and expiry."""

    token: str
    token_id: str
    account: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token_id}, account={self.account})"


@dataclass(frozen=True)
class TokenRecord:
    """A registered token as the register shows it (never the bearer string)."""

    token_id: str
    account_id: str
    generation: int
    kid: str
    issued_at: datetime
    expires_at: datetime
    issued_by: str
    via: str
    revoked_at: datetime | None


def new_token_id() -> str:
    """Return a fresh token id (`jti`): 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def check_ttl(vault: Vault, ttl_seconds: int | None) -> timedelta:
    """Return the lifetime to issue a token for (`None`: the configured default).

    Raises `BadField` if it is not positive or exceeds `TVAULT_TOKEN_MAX_TTL_SECONDS`.
    """
    settings = vault.settings
    seconds = settings.token_ttl_seconds if ttl_seconds is None else ttl_seconds
    if seconds <= 0:
        raise BadField("ttl", "must be a positive number of seconds")
    if seconds > settings.token_max_ttl_seconds:
        raise BadField(
            "ttl",
            f"{seconds} s exceeds the maximum token lifetime of "
            f"{settings.token_max_ttl_seconds} s (TVAULT_TOKEN_MAX_TTL_SECONDS)",
        )
    return timedelta(seconds=seconds)


def issue(
    vault: Vault,
    name: str,
    *,
    ttl_seconds: int | None,
    actor: ledger.Actor = OFFLINE_ACTOR,
    via: str = OFFLINE,
) -> IssuedToken:
    """Issue a token for the enabled account `name`: register it and record its ledger entry.

    Signs with the key the database names current, re-reading the keyring if another process
    rotated it. Raises `BadField` (lifetime), `NotFound` (no enabled account), `Conflict` (the
    key was rotated during this very call), `keys.KeyringError`.
    """
    ttl = check_ttl(vault, ttl_seconds)
    key = token_keys.current_signing_key(vault.sessions, vault.keyring)
    now = vault.clock()
    token_id = new_token_id()
    with vault.sessions.begin() as session:
        token_keys.check_current(session, key)
        user = find_user(session, name)
        expires = now + ttl
        session.add(
            AccessToken(
                jti=token_id,
                account_id=user.id,
                generation=user.generation,
                kid=key.kid,
                issued_at=now,
                expires_at=expires,
                issued_by=ledger.actor_name(actor),
                via=via,
            )
        )
        ledger.append(
            session,
            actor=actor,
            action=ledger.actions.TOKEN_ISSUANCE,
            details={
                "account": user.name,
                "account_id": user.id,
                "generation": user.generation,
                "token": token_id,
                "kid": key.kid,
                "expires": _stamp(expires),
                "via": via,
            },
            now=now,
        )
        token = issue_token(
            key.private_pem,
            key.public_pem,
            subject=user.name,
            role=user.role,
            account_id=user.id,
            generation=user.generation,
            token_id=token_id,
            issuer=vault.settings.token_issuer,
            audience=vault.settings.token_audience,
            ttl=ttl,
            now=now,
        )
    return IssuedToken(token, token_id, name, expires)


def _manage(vault: Vault, principal: Principal) -> None:
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))


def issue_by(vault: Vault, principal: Principal, name: str, ttl_seconds: int | None) -> IssuedToken:
    """Issue a token for `name` through the API (`user.manage`: custodians).

    **Whoever holds the token acts as `name`**: the ledger entry names `principal` as the
    issuer. Raises `Forbidden` and as `issue`.
    """
    _manage(vault, principal)
    return issue(vault, name, ttl_seconds=ttl_seconds, actor=principal, via=API)


def revoke(
    vault: Vault, token_id: str, *, actor: ledger.Actor = OFFLINE_ACTOR, via: str = OFFLINE
) -> tuple[TokenRecord, bool]:
    """Revoke the token `token_id`; return its record and whether it was live until now.

    Revoking it again changes nothing and writes no entry. Raises `NotFound` when this vault
    never issued such a token (an OIDC token is revoked at its issuer, or by disabling the
    account).
    """
    now = vault.clock()
    with vault.sessions.begin() as session:
        row = session.get(AccessToken, token_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no token {token_id} issued by this vault")
        changed = row.revoked_at is None
        if changed:
            row.revoked_at, row.revoked_by = now, ledger.actor_name(actor)
            account = session.get(User, row.account_id)
            ledger.append(
                session,
                actor=actor,
                action=ledger.actions.TOKEN_REVOCATION,
                details={
                    "account": account.name if account is not None else None,
                    "account_id": row.account_id,
                    "token": token_id,
                    "expires": _stamp(row.expires_at),
                    "via": via,
                },
                now=now,
            )
        return _record(row), changed


def revoke_by(vault: Vault, principal: Principal, token_id: str) -> tuple[TokenRecord, bool]:
    """Revoke `token_id` through the API (`user.manage`). Raises `Forbidden`, `NotFound`."""
    _manage(vault, principal)
    return revoke(vault, token_id, actor=principal, via=API)


def tokens_of(vault: Vault, principal: Principal, name: str) -> list[TokenRecord]:
    """Return the unexpired tokens registered for the account `name`, newest first.

    Needs `user.manage`. Raises `Forbidden`, `NotFound` (no such account).
    """
    _manage(vault, principal)
    now = vault.clock()
    with vault.sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no account {name!r}")
        rows = session.scalars(
            select(AccessToken)
            .where(AccessToken.account_id == user.id, AccessToken.expires_at > now)
            .order_by(AccessToken.issued_at.desc())
        ).all()
        return [_record(row) for row in rows]


def _not_oneself(principal: Principal, name: str) -> None:
    # A custodian who disabled or demoted their own account would lock themselves out, and
    # perhaps the vault's last custodian with them: another custodian (or the keyholder,
    # offline) does it.
    if name == principal.subject:
        raise Conflict(f"{name} may not disable or change the role of their own account")


def set_disabled_by(
    vault: Vault, principal: Principal, name: str, disabled: bool, *, via: str = API
) -> bool:
    """Disable or enable `name` (`user.manage`); return whether it changed.

    Raises `Forbidden`, `NotFound`, `Conflict` (disabling one's own account).
    """
    _manage(vault, principal)
    if disabled:
        _not_oneself(principal, name)
    with vault.sessions.begin() as session:
        return set_disabled(session, name, disabled, vault.clock(), actor=principal, via=via)


def change_role_by(
    vault: Vault, principal: Principal, name: str, role: str, *, via: str = API
) -> bool:
    """Change `name`'s role (`user.manage`); return whether it changed.

    Raises `Forbidden`, `NotFound`, `BadField`, `Conflict` (one's own role).
    """
    _manage(vault, principal)
    _not_oneself(principal, name)
    with vault.sessions.begin() as session:
        return change_role(session, name, role, vault.clock(), actor=principal, via=via)


def record_first_use(vault: Vault, issuer: str, name: str, roles: frozenset[str]) -> bool:
    """Record the first use of an OIDC principal: `issuer` vouching for the account `name`.

    Returns whether this was the first use (and an `oidc first use` entry was written). Keyed
    by the account's immutable id, so a re-created account is a new principal.
    Raises `NotFound` if there is no enabled account `name`.
    """
    now = vault.clock()
    try:
        with vault.sessions.begin() as session:
            user = find_user(session, name)
            if session.get(OidcPrincipal, (issuer, user.id)) is not None:
                return False
            session.add(OidcPrincipal(issuer=issuer, account_id=user.id, first_used_at=now))
            session.flush()
            _first_use_entry(session, issuer, user, roles, now)
    except IntegrityError:
        return False  # another request recorded the same first use at the same moment
    return True


def _first_use_entry(
    session: Session, issuer: str, user: User, roles: frozenset[str], now: datetime
) -> None:
    ledger.append(
        session,
        actor=user.name,
        action=ledger.actions.OIDC_FIRST_USE,
        details={
            "account": user.name,
            "account_id": user.id,
            "issuer": issuer,
            "roles": sorted(roles),
        },
        now=now,
    )


@dataclass(frozen=True)
class TokenKeyRotation:
    """What `rotate_token_key` did: the new `kid`, the previous one and until when it stays."""

    kid: str
    previous: str | None
    previous_until: datetime | None


def rotate_token_key(vault: Vault, actor: str) -> TokenKeyRotation:
    """Make a fresh token-signing key current; keep the previous one for its live tokens.

    `actor` must be an account the policy allows `key.manage`. The previous key stays
    published and accepted until the last token it signed expires, then drops out (every
    process, `vault.token_keys`). The keyring is written first: if the database step fails,
    the next opening of the vault finishes it (`token_keys.ensure`). Appends a `key rotation`
    entry. Raises `Forbidden`, `NotFound` (no such account), `keys.KeyringError`.
    """
    with vault.sessions() as session:
        principal = principal_of(session, find_user(session, actor))
    authorize(vault.sessions, principal, actions.KEY_MANAGE, Resource(kind=kinds.KEY))
    vault.keyring.set_secret(token_keys.TOKEN_SIGNING, keys.generate_token_key().encode("ascii"))
    key = token_keys.signing_key(vault.keyring)
    now = vault.clock()
    max_ttl = timedelta(seconds=vault.settings.token_max_ttl_seconds)
    with vault.sessions.begin() as session:
        previous = token_keys.install(session, key.public_pem, now, max_ttl)
        until = None
        if previous is not None:
            row = session.get(TokenKey, previous)
            until = row.drops_at if row is not None and row.drops_at else None
        ledger.append(
            session,
            actor=actor,
            action=ledger.actions.KEY_ROTATION,
            details={
                "key": "token-signing",
                "kid": key.kid,
                "previous": previous,
                "previous_until": None if until is None else _stamp(until),
            },
            now=now,
        )
    return TokenKeyRotation(key.kid, previous, until)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _record(row: AccessToken) -> TokenRecord:
    return TokenRecord(
        token_id=row.jti,
        account_id=row.account_id,
        generation=row.generation,
        kid=row.kid,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        issued_by=row.issued_by,
        via=row.via,
        revoked_at=row.revoked_at,
    )
