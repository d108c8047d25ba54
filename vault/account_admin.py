"""Managing accounts as a custodian (`user.manage`): list them, add one, issue a one-time
set-password link, turn off a second factor so that it is set up again.

The changes are those of `tvault users add|link` (vault/accounts.py, vault/passwords.py), with
the same ledger entries, but made by an account the policy allows rather than offline with the
passphrase: the entry names that account as actor. Disabling, enabling and changing a role are
`vault.credentials.set_disabled_by` and `change_role_by`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from policies import Principal, Resource, actions, kinds
from vault import passwords
from vault.access import authorize
from vault.accounts import API, add_user
from vault.db import User
from vault.db.web_tables import AccountSecret
from vault.parts import Vault


@dataclass(frozen=True)
class AccountView:
    """An account as a custodian sees it: never a secret, only whether there is one."""

    id: str
    name: str
    role: str
    disabled: bool
    has_password: bool
    has_second_factor: bool
    created_at: datetime


def _manage(vault: Vault, principal: Principal) -> None:
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))


def accounts_by(vault: Vault, principal: Principal) -> list[AccountView]:
    """Return every account, by name, with its role and state (`user.manage`).

    Raises `Forbidden` (after its `access denied` entry).
    """
    _manage(vault, principal)
    with vault.sessions() as session:
        rows = session.execute(
            select(User, AccountSecret.password_hash, AccountSecret.totp_sealed)
            .outerjoin(AccountSecret, AccountSecret.account_id == User.id)
            .order_by(User.name)
        ).all()
    return [
        AccountView(
            id=user.id,
            name=user.name,
            role=user.role,
            disabled=user.disabled,
            has_password=password is not None,
            has_second_factor=totp is not None,
            created_at=user.created_at,
        )
        for user, password, totp in rows
    ]


def add_by(vault: Vault, principal: Principal, name: str, role: str, *, via: str = API) -> str:
    """Add the account `name` with `role` (`user.manage`); return its id. It has no password
    yet: issue it a link (`link_by`).

    Raises `Forbidden`, `BadField` (name or role), `Conflict` (the name is taken).
    """
    _manage(vault, principal)
    with vault.sessions.begin() as session:
        return add_user(session, name, role, vault.clock(), actor=principal, via=via).id


def link_by(
    vault: Vault, principal: Principal, name: str, *, via: str = API
) -> tuple[str, str, datetime]:
    """Issue a one-time set-password link for `name` (`user.manage`), as `tvault users link`:
    return its id, its secret (**whoever holds it sets the password**) and its expiry.

    Earlier unused links of the account stop working. Raises `Forbidden`, `NotFound`.
    """
    _manage(vault, principal)
    return passwords.issue_link(vault, name, actor=principal, via=via)


def reset_second_factor_by(
    vault: Vault, principal: Principal, name: str, *, via: str = API
) -> bool:
    """Turn off the TOTP second factor of `name` (`user.manage`), for an account that lost its
    authenticator; return whether it was on. It is set up again at the next sign-in where
    `TVAULT_REQUIRE_2FA` asks for one, else from the account page.

    Raises `Forbidden`, `NotFound`.
    """
    _manage(vault, principal)
    return passwords.disable_totp(vault, name, actor=principal, via=via)
