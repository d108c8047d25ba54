"""Replay the ledger's credential entries and compare them with the accounts and the token
register (`tvault verify`; DESIGN.md promise 9).

An account row or a token row written in SQL, without its ledger entry, would be a credential
nobody can account for: this check finds it. Replayed, in ledger order, from each entry's own
canonical JSON: `account creation`, `role change` and `account state` give each account's name,
role, disabled flag and generation (by immutable id); `token issuance` and `token revocation`
give each registered token's account, generation and revocation. Web sign-in credentials too:
a password needs a `password change` entry for its account, a second factor that is on a
`second factor change` entry that turned it on last, a signed-in web session its `sign in`.

Accounts made before accounts were recorded (revision 0007) have no creation entry: such an
account is named in a note, never failed, when it is older than the ledger's first `account
creation` entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.db import User
from vault.db.credential_tables import AccessToken
from vault.db.web_tables import AccountSecret, WebSession
from vault.ledger import actions
from vault.ledger.entry import parse_time
from vault.ledger.errors import LedgerError
from vault.replay import state_entries

ACCOUNT_UNRECORDED: Final = "account without its ledger entry"
ACCOUNT_DIFFERS: Final = "account differs from the ledger"
ACCOUNT_MISSING: Final = "account in the ledger missing from the table"
CREDENTIAL_UNRECORDED: Final = "token without its ledger entry"
CREDENTIAL_DIFFERS: Final = "token differs from the ledger"
CREDENTIAL_MISSING: Final = "token in the ledger missing from the register"
PASSWORD_UNRECORDED: Final = "password without its ledger entry"  # noqa: S105 (a finding)
SECOND_FACTOR_UNRECORDED: Final = "second factor without its ledger entry"
SESSION_UNRECORDED: Final = "web session without its sign-in entry"
WEB_REPLAYED: Final = frozenset(
    {actions.PASSWORD_CHANGE, actions.SECOND_FACTOR_CHANGE, actions.SIGN_IN}
)

REPLAYED: Final = frozenset(
    {
        actions.ACCOUNT_CREATION,
        actions.ROLE_CHANGE,
        actions.ACCOUNT_STATE,
        actions.TOKEN_ISSUANCE,
        actions.TOKEN_REVOCATION,
    }
)

Finding = tuple[str, str, str]  # (subject, kind, detail), as `vault.verify.Report.fail` takes


@dataclass
class Credentials:
    """The accounts and tokens the ledger's entries lead to."""

    # account id -> (name, role, disabled, generation)
    accounts: dict[str, tuple[str, str, bool, int]] = field(default_factory=dict)
    tokens: dict[str, tuple[str, int]] = field(default_factory=dict)  # jti -> (account, gen)
    revoked: set[str] = field(default_factory=set)
    recording_since: datetime | None = None  # the first `account creation` entry's time

    def apply(self, action: str, time: str, details: dict[str, Any]) -> None:
        """Apply one entry (entries must come in ledger order)."""
        if action == actions.TOKEN_ISSUANCE:
            self.tokens[str(details["token"])] = (
                str(details["account_id"]),
                int(details["generation"]),
            )
            return
        if action == actions.TOKEN_REVOCATION:
            self.revoked.add(str(details["token"]))
            return
        account = str(details["account_id"])
        generation = int(details["generation"])
        if action == actions.ACCOUNT_CREATION:
            if self.recording_since is None:
                self.recording_since = parse_time(time)
            self.accounts[account] = (str(details["account"]), str(details["role"]), False, 1)
            return
        name, role, disabled, _ = self.accounts.get(
            account, (str(details["account"]), "", False, 0)
        )
        if action == actions.ROLE_CHANGE:
            role = str(details["role"])
        else:
            disabled = bool(details["disabled"])
        self.accounts[account] = (name, role, disabled, generation)


def replay(session: Session) -> Credentials:
    """Replay every credential entry, oldest first; malformed ones are skipped (the chain
    check of `vault.verify` names them)."""
    state = Credentials()
    for entry in state_entries(session, REPLAYED):
        try:
            state.apply(entry["action"], entry["time"], entry["details"])
        except (ValueError, KeyError, TypeError, LedgerError):
            continue
    return state


def check(session: Session) -> tuple[list[Finding], list[str]]:
    """Compare the accounts and the token register with the replayed ledger."""
    state = replay(session)
    findings: list[Finding] = []
    unrecorded: list[str] = []
    seen: set[str] = set()
    for user in session.scalars(select(User).order_by(User.name)):
        seen.add(user.id)
        expected = state.accounts.get(user.id)
        if expected is None:
            created = user.created_at
            if state.recording_since is None or created < state.recording_since:
                unrecorded.append(user.name)
            else:
                findings.append((f"account {user.name}", ACCOUNT_UNRECORDED, user.id))
            continue
        table = (user.name, user.role, user.disabled, user.generation)
        if table != expected:
            detail = f"table {_show(table)}, ledger {_show(expected)}"
            findings.append((f"account {user.name}", ACCOUNT_DIFFERS, detail))
    for account_id in sorted(set(state.accounts) - seen):
        findings.append((f"account {state.accounts[account_id][0]}", ACCOUNT_MISSING, account_id))
    findings += _tokens(session, state)
    findings += _web(session)
    notes = [f"replayed {len(state.accounts)} account(s), {len(state.tokens)} token(s)"]
    if unrecorded:
        notes.append(
            f"{len(unrecorded)} account(s) made before accounts were recorded in the ledger: "
            + ", ".join(unrecorded)
        )
    return findings, notes


def _tokens(session: Session, state: Credentials) -> list[Finding]:
    findings: list[Finding] = []
    registered: set[str] = set()
    for row in session.scalars(select(AccessToken).order_by(AccessToken.issued_at)):
        registered.add(row.jti)
        expected = state.tokens.get(row.jti)
        if expected is None:
            findings.append(
                (f"token {row.jti}", CREDENTIAL_UNRECORDED, f"account {row.account_id}")
            )
        elif expected != (row.account_id, row.generation):
            detail = f"table {row.account_id}/{row.generation}, ledger {expected[0]}/{expected[1]}"
            findings.append((f"token {row.jti}", CREDENTIAL_DIFFERS, detail))
        elif (row.revoked_at is not None) != (row.jti in state.revoked):
            state_of = "revoked" if row.revoked_at is not None else "live"
            detail = f"{state_of} in the register, not in the ledger"
            findings.append((f"token {row.jti}", CREDENTIAL_DIFFERS, detail))
    for jti in sorted(set(state.tokens) - registered):
        findings.append((f"token {jti}", CREDENTIAL_MISSING, f"account {state.tokens[jti][0]}"))
    return findings


def _web(session: Session) -> list[Finding]:
    """Web sign-in credentials (docs/web.md): a password, a second factor or a signed-in
    session in the tables without the entry that made it."""
    passwords: set[str] = set()
    second_factor: dict[str, bool] = {}  # account id -> on, after its last change
    signed_in: set[str] = set()
    for entry in state_entries(session, WEB_REPLAYED):
        details = entry["details"]
        if entry["action"] == actions.SIGN_IN:
            signed_in.add(str(details.get("session")))
        elif entry["action"] == actions.PASSWORD_CHANGE:
            passwords.add(str(details.get("account_id")))
        else:
            second_factor[str(details.get("account_id"))] = details.get("enabled") is True
    findings: list[Finding] = []
    for secret in session.scalars(select(AccountSecret).order_by(AccountSecret.account_id)):
        subject = f"account {secret.account_id}"
        if secret.password_hash is not None and secret.account_id not in passwords:
            findings.append((subject, PASSWORD_UNRECORDED, secret.account_id))
        if secret.totp_sealed is not None and not second_factor.get(secret.account_id, False):
            findings.append((subject, SECOND_FACTOR_UNRECORDED, secret.account_id))
    for web in session.scalars(select(WebSession).where(WebSession.state == "active")):
        if web.id not in signed_in:
            findings.append((f"session {web.id}", SESSION_UNRECORDED, f"account {web.account_id}"))
    return findings


def _show(account: tuple[str, str, bool, int]) -> str:
    name, role, disabled, generation = account
    return f"{name} {role}{' disabled' if disabled else ''} gen {generation}"
