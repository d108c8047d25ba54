"""Passwords (Argon2id), TOTP second factors (RFC 6238) and one-time set-password links of
local accounts.

DESIGN.md promise 9: setting or changing a password, turning the second factor on or off and
issuing a set-password link are ledger entries in the same transaction as the change, naming
the account (name, immutable id, generation) and how (`offline` with the passphrase, or `web`).
No secret is kept as given: passwords as Argon2id hashes (argon2-cffi's defaults, the RFC 9106
profile), link secrets as their SHA-256, the TOTP seed sealed to the vault's metadata key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

import keys
from vault import ledger
from vault.db import User
from vault.db.web_tables import AccountSecret, PasswordLink
from vault.errors import BadField, NotFound, Unauthenticated, UnknownAccount
from vault.ids import new_id
from vault.parts import METADATA_IDENTITY, Vault
from vault.sealing import open_json, seal_json

WEB: Final = "web"  # `via` of a change made through the web interface
MIN_LENGTH: Final = 10  # NIST SP 800-63B 3.1.1.2 asks for at least 8; survivors' data asks more
MAX_LENGTH: Final = 256  # Argon2 takes any length; a cap keeps a request from costing seconds
_HASHER = PasswordHasher()  # Argon2id, RFC 9106 "second recommended option"
# Verified against when the account has no password, so a wrong name costs as much time as a
# wrong password and the answer time does not tell which accounts exist.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
TOTP_WINDOW: Final = 1  # time steps of clock skew accepted either side (RFC 6238 5.2)


@dataclass(frozen=True)
class Checked:
    """An account whose password was right: its name, id, generation, role, whether a TOTP
    code is still to come, and its preferred page language."""

    name: str
    account_id: str
    generation: int
    role: str
    second_factor: bool
    language: str | None


def check_new_password(password: str) -> None:
    """Raise `BadField` unless `password` is `MIN_LENGTH`-`MAX_LENGTH` characters, no NUL."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH or "\x00" in password:
        raise BadField("password", f"{MIN_LENGTH} to {MAX_LENGTH} characters")


def _secret_row(session: Session, account_id: str) -> AccountSecret:
    row = session.get(AccountSecret, account_id, with_for_update=True)
    if row is None:
        row = AccountSecret(account_id=account_id)
        session.add(row)
    return row


def _enabled(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled:
        raise UnknownAccount(f"no account {name!r}")
    return user


def _entry(
    session: Session,
    action: str,
    user: User,
    actor: ledger.Actor,
    via: str,
    now: datetime,
    **details: object,
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


def set_password(vault: Vault, name: str, password: str, *, actor: ledger.Actor, via: str) -> None:
    """Set the password of the enabled account `name`, with its ledger entry.

    Raises `BadField` (too short or long), `NotFound`.
    """
    check_new_password(password)
    digest = _HASHER.hash(password)
    now = vault.clock()
    with vault.sessions.begin() as session:
        user = _enabled(session, name)
        row = _secret_row(session, user.id)
        row.password_hash, row.password_changed_at = digest, now
        _entry(session, ledger.actions.PASSWORD_CHANGE, user, actor, via, now)


def check_password(vault: Vault, name: str, password: str) -> Checked:
    """Return the account `name` if `password` is its password.

    Raises `Unauthenticated` ("wrong name or password") for an unknown or disabled account,
    one without a password, or a wrong password: one answer, whichever it was.
    """
    with vault.sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        row = session.get(AccountSecret, user.id) if user is not None else None
        stored = row.password_hash if row is not None else None
    try:
        _HASHER.verify(stored or _DUMMY, password[:MAX_LENGTH])
        ok = stored is not None and user is not None and not user.disabled
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or row is None:
        raise Unauthenticated("wrong name or password")
    return Checked(
        user.name,
        user.id,
        user.generation,
        user.role,
        row.totp_sealed is not None,
        row.language,
    )


def new_totp_secret() -> str:
    """Return a fresh TOTP seed: 160 random bits in base32 (RFC 4226 4, R6)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, name: str) -> str:
    """Return the `otpauth://` URI an authenticator app reads for `secret` (account `name`)."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="testimony-vault")


def _code_step(secret: str, code: str, now: datetime) -> int | None:
    # The time step the code belongs to, within the window, or None. Compared in constant time.
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in range(step - TOTP_WINDOW, step + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _metadata_recipient(vault: Vault) -> str:
    return keys.recipient_of(vault.keyring.secret(METADATA_IDENTITY).decode("ascii"))


def enable_totp(vault: Vault, name: str, secret: str, code: str, *, via: str = WEB) -> None:
    """Turn on the TOTP second factor of `name` with `secret`, once `code` proves the app has it.

    Raises `BadField` ("code") when the code does not match, `NotFound`.
    """
    now = vault.clock()
    step = _code_step(secret, code, now)
    if step is None:
        raise BadField("code", "does not match")
    sealed = seal_json({"totp": secret}, _metadata_recipient(vault))
    with vault.sessions.begin() as session:
        user = _enabled(session, name)
        row = _secret_row(session, user.id)
        row.totp_sealed, row.totp_enabled_at, row.totp_last_step = sealed, now, step
        _entry(session, ledger.actions.SECOND_FACTOR_CHANGE, user, name, via, now, enabled=True)


def disable_totp(vault: Vault, name: str, *, actor: ledger.Actor, via: str) -> bool:
    """Turn off the second factor of `name`; return whether it was on. Raises `NotFound`."""
    now = vault.clock()
    with vault.sessions.begin() as session:
        user = _enabled(session, name)
        row = _secret_row(session, user.id)
        if row.totp_sealed is None:
            return False
        row.totp_sealed, row.totp_enabled_at, row.totp_last_step = None, None, None
        _entry(session, ledger.actions.SECOND_FACTOR_CHANGE, user, actor, via, now, enabled=False)
        return True


def check_totp(vault: Vault, account_id: str, code: str) -> bool:
    """Return whether `code` is a current TOTP code of the account, not used before.

    A code accepted here cannot be accepted again (RFC 6238 5.2).
    """
    now = vault.clock()
    identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    with vault.sessions.begin() as session:
        row = session.get(AccountSecret, account_id, with_for_update=True)
        if row is None or row.totp_sealed is None:
            return False
        secret = open_json(row.totp_sealed, identity).get("totp")
        step = _code_step(str(secret), code, now)
        if step is None or (row.totp_last_step is not None and step <= row.totp_last_step):
            return False
        row.totp_last_step = step
        return True


def has_totp(vault: Vault, account_id: str) -> bool:
    """Return whether the account has a second factor turned on."""
    with vault.sessions() as session:
        row = session.get(AccountSecret, account_id)
        return row is not None and row.totp_sealed is not None


def set_language(vault: Vault, account_id: str, language: str) -> None:
    """Remember `language` as the account's page language (not a credential: no entry)."""
    with vault.sessions.begin() as session:
        _secret_row(session, account_id).language = language


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


def issue_link(
    vault: Vault, name: str, *, actor: ledger.Actor, via: str
) -> tuple[str, str, datetime]:
    """Issue a one-time set-password link for `name`: return its id, its secret (**what the
    link carries: whoever holds it sets the password**) and its expiry.

    Earlier unused links of the account stop working. Raises `NotFound`.
    """
    now = vault.clock()
    expires = now + timedelta(seconds=vault.settings.password_link_ttl_seconds)
    link_id, secret = new_id(), secrets.token_urlsafe(32)
    with vault.sessions.begin() as session:
        user = _enabled(session, name)
        for old in session.scalars(
            select(PasswordLink).where(
                PasswordLink.account_id == user.id, PasswordLink.used_at.is_(None)
            )
        ):
            old.used_at = now  # superseded
        session.add(
            PasswordLink(
                id=link_id,
                secret_sha256=_sha256(secret),
                account_id=user.id,
                created_at=now,
                expires_at=expires,
            )
        )
        _entry(
            session,
            ledger.actions.PASSWORD_LINK_ISSUANCE,
            user,
            actor,
            via,
            now,
            link=link_id,
            expires=expires.isoformat(timespec="seconds"),
        )
    return link_id, secret, expires


def link_account(vault: Vault, secret: str) -> str:
    """Return the account name a live set-password link `secret` is for.

    Raises `NotFound` when the link is unknown, used, superseded or expired (one answer).
    """
    now = vault.clock()
    with vault.sessions() as session:
        link = session.scalar(
            select(PasswordLink).where(PasswordLink.secret_sha256 == _sha256(secret))
        )
        user = session.get(User, link.account_id) if link is not None else None
        if (
            link is None
            or link.used_at is not None
            or link.expires_at <= now
            or user is None
            or user.disabled
        ):
            raise NotFound("this link is unknown, used or expired")
        return user.name


def use_link(vault: Vault, secret: str, password: str) -> str:
    """Set a password through the one-time link `secret`; return the account name.

    The link is spent in the same transaction as the password and its ledger entry. Raises
    `BadField` (the password), `NotFound` (the link, as `link_account`).
    """
    check_new_password(password)
    digest = _HASHER.hash(password)
    now = vault.clock()
    with vault.sessions.begin() as session:
        link = session.scalar(
            select(PasswordLink)
            .where(PasswordLink.secret_sha256 == _sha256(secret))
            .with_for_update()
        )
        user = session.get(User, link.account_id) if link is not None else None
        if (
            link is None
            or link.used_at is not None
            or link.expires_at <= now
            or user is None
            or user.disabled
        ):
            raise NotFound("this link is unknown, used or expired")
        link.used_at = now
        row = _secret_row(session, user.id)
        row.password_hash, row.password_changed_at = digest, now
        _entry(session, ledger.actions.PASSWORD_CHANGE, user, user.name, WEB, now, link=link.id)
        return user.name
