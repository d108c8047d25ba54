"""Recipient keys of commission accounts: what their exports are encrypted to (issue 18).

A custodian registers, lists and removes them (`user.manage`); a commission lists its own.
Two kinds are taken, the ones the stock `age` tool encrypts to: an age X25519 recipient
(`age1...`) and an OpenSSH `ssh-ed25519` public key (its comment is dropped: it often names a
person). Anything else is refused before anything changes. Each registration and removal is a
ledger entry naming the key's id (the SHA-256 of the key as stored), never the key's comment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select

import keys
from policies import Principal, Resource, actions, decide, kinds, roles
from vault import ledger
from vault.access import authorize
from vault.db import User
from vault.db.export_tables import CommissionRecipient
from vault.errors import BadField, Conflict, NotFound
from vault.parts import Vault

AGE: Final = "age"
SSH_ED25519: Final = "ssh-ed25519"
MAX_KEY: Final = 1000  # far more than one key line
MAX_PER_ACCOUNT: Final = 20


@dataclass(frozen=True)
class RecipientView:
    """A registered recipient: its id, type, the key, who added it and when."""

    key_id: str
    user: str
    key_type: str
    recipient: str
    added_by: str
    added_at: datetime


def parse(text: str) -> tuple[str, str]:
    """Return `(key_type, recipient)` for an `age1...` or `ssh-ed25519 AAAA... [comment]` key.

    Raises `BadField("key", ...)` naming what is wrong; the key itself is never echoed.
    """
    line = text.strip()
    if not line or len(line) > MAX_KEY or "\n" in line or "\r" in line:
        raise BadField("key", "one public key line (age1... or ssh-ed25519 AAAA...)")
    if line.startswith("age1"):
        key_type = AGE
    else:
        fields = line.split()
        if fields[0] != SSH_ED25519:
            kind = fields[0][:32]
            raise BadField(
                "key", f"unsupported key type {kind!r}: use an age1... or ssh-ed25519 public key"
            )
        if len(fields) < 2:
            raise BadField("key", "an ssh-ed25519 line needs its base64 key")
        _ssh_blob(fields[1])
        key_type = SSH_ED25519
    try:
        # What the bag's sealer will use (`keys.normalize_recipient`): the Bech32 checksum, a
        # usable curve point, the comment dropped.
        return key_type, keys.normalize_recipient(line)
    except ValueError as exc:
        raise BadField("key", f"a malformed {key_type} recipient ({exc})") from None


def _ssh_blob(encoded: str) -> str:
    # RFC 8709 3.1 / RFC 4253 6.6: string "ssh-ed25519", string key (32 bytes), nothing more.
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadField("key", "a malformed ssh-ed25519 key (bad base64)") from None
    try:
        (name_len,) = struct.unpack(">I", blob[:4])
        name = blob[4 : 4 + name_len]
        (key_len,) = struct.unpack(">I", blob[4 + name_len : 8 + name_len])
        rest = blob[8 + name_len :]
    except struct.error:
        raise BadField("key", "a malformed ssh-ed25519 key (truncated)") from None
    if name != SSH_ED25519.encode() or key_len != 32 or len(rest) != 32:
        raise BadField("key", "a malformed ssh-ed25519 key (not a 32-byte Ed25519 key)")
    return base64.b64encode(blob).decode("ascii")


def key_id(recipient: str) -> str:
    """Return the id of a parsed `recipient`: the SHA-256 of its text, hex."""
    return hashlib.sha256(recipient.encode("ascii")).hexdigest()


def _commission(session_user: User | None, name: str) -> User:
    if session_user is None or session_user.disabled:
        raise NotFound(f"no account {name!r}")
    if session_user.role != roles.COMMISSION:
        raise BadField("user", f"{name} is a {session_user.role}; recipients belong to commissions")
    return session_user


def add(vault: Vault, principal: Principal, user: str, key: str) -> RecipientView:
    """Register `key` as a recipient of the commission account `user`.

    Raises `Forbidden` (not `user.manage`), `BadField` (malformed or unsupported key, not a
    commission), `NotFound` (no account), `Conflict` (registered already, or too many).
    """
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))
    key_type, recipient = parse(key)
    ident = key_id(recipient)
    now = vault.clock()
    with vault.sessions.begin() as session:
        _commission(session.scalar(select(User).where(User.name == user)), user)
        if session.get(CommissionRecipient, ident) is not None:
            raise Conflict(f"the key {ident} is registered already")
        held = session.scalars(
            select(CommissionRecipient.key_id).where(CommissionRecipient.user_name == user)
        ).all()
        if len(held) >= MAX_PER_ACCOUNT:
            raise Conflict(f"{user} has {MAX_PER_ACCOUNT} recipients already; remove one first")
        row = CommissionRecipient(
            key_id=ident,
            user_name=user,
            key_type=key_type,
            recipient=recipient,
            added_by=principal.subject,
            added_at=now,
        )
        session.add(row)
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.KEY_REGISTRATION,
            details={"key_id": ident, "account": user, "key_type": key_type, "use": "export"},
            now=now,
        )
    return _view(row)


def remove(vault: Vault, principal: Principal, user: str, ident: str) -> None:
    """Remove the recipient `ident` (its key id, or the key itself) of `user`.

    Exports built before keep what they were encrypted to. Raises `Forbidden`, `NotFound`.
    """
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))
    wanted = ident.strip()
    if not all(c in "0123456789abcdef" for c in wanted) or len(wanted) != 64:
        wanted = key_id(parse(wanted)[1])
    with vault.sessions.begin() as session:
        row = session.get(CommissionRecipient, wanted)
        if row is None or row.user_name != user:
            raise NotFound(f"{user} has no recipient {wanted}")
        session.delete(row)
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.KEY_REMOVAL,
            details={"key_id": wanted, "account": user, "use": "export"},
        )


def list_recipients(vault: Vault, principal: Principal, user: str) -> list[RecipientView]:
    """Return the recipients of `user`: for custodians (`user.manage`) and the account itself.

    Raises `Forbidden`.
    """
    if principal.subject != user or not receives_exports(principal):
        # Custodians; and a commission its own public keys, while it may receive exports.
        authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))
    with vault.sessions() as session:
        rows = session.scalars(
            select(CommissionRecipient)
            .where(CommissionRecipient.user_name == user)
            .order_by(CommissionRecipient.added_at, CommissionRecipient.key_id)
        ).all()
    return [_view(r) for r in rows]


def receives_exports(principal: Principal) -> bool:
    """Return whether the policy lets `principal` ask for or download an export in a case it is
    granted on (a commission's part in exports; no decision, no part)."""
    return any(
        decide(principal, actions.EXPORT_REQUEST, Resource(kind=kinds.CASE, case_id=case_id))
        or decide(principal, actions.EXPORT_DOWNLOAD, Resource(kind=kinds.EXPORT, case_id=case_id))
        for case_id in principal.grants
    )


def recipients_of(vault: Vault, user: str) -> list[str]:
    """Return the recipient keys of `user` to encrypt an export to (no policy: the builder's)."""
    with vault.sessions() as session:
        return list(
            session.scalars(
                select(CommissionRecipient.recipient)
                .where(CommissionRecipient.user_name == user)
                .order_by(CommissionRecipient.key_id)
            ).all()
        )


def _view(row: CommissionRecipient) -> RecipientView:
    return RecipientView(
        row.key_id, row.user_name, row.key_type, row.recipient, row.added_by, row.added_at
    )
