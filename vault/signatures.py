"""Signed deposits: depositor keys, the signed statement checked at deposit, co-signatures.

A statement is RFC 8785 canonical JSON with exactly the fields `origin` (the vault's ledger
origin), `case`, `sha256` and `size` (of the plaintext), `filename`, `kind`, `consent` (sorted
scopes), `key_id` (`keys.key_id` of the signer's public key) and `signed_at` (RFC 3339, UTC).
It is signed with a raw Ed25519 key (`keys.sign`) or with an OpenSSH key through
`ssh-keygen -Y sign -n testimony-vault` (SSHSIG, accepted as `ssh-keygen` wrote it). Keys are
registered to accounts by a custodian (`user.manage`); only the account a key belongs to may
sign with it. Promise 2: the deposit's streamed SHA-256 and size must equal the statement's, or
nothing is stored. The statement names the original filename (survivor data), so it is kept
sealed to the item's own identity; its SHA-256 and the signer's key id stay in the clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import keys
from policies import Principal, Resource, actions, kinds
from vault import ledger
from vault.access import authorize, authorize_item
from vault.consent import item_identity
from vault.db import Item, User
from vault.db.signature_tables import DepositorKey, ItemCiphertext, ItemSignature
from vault.errors import BadField, Conflict, NotFound
from vault.ledger.service import default_origin
from vault.parts import LOG_SIGNING, Vault

# The raw body deposit carries the statement and its signature in these headers, each the
# base64 (RFC 4648 section 4) of the bytes: query strings end up in logs and proxies' caches,
# headers less so, and they work for multipart bodies too.
STATEMENT_HEADER: Final = "Tvault-Statement"
SIGNATURE_HEADER: Final = "Tvault-Signature"
FIELDS: Final = frozenset(
    {"origin", "case", "sha256", "size", "filename", "kind", "consent", "key_id", "signed_at"}
)
DEPOSITOR: Final = "depositor"
COSIGNER: Final = "cosigner"
MAX_STATEMENT: Final = 16 * 1024
MAX_SIGNATURE: Final = 16 * 1024
MAX_PUBLIC_KEY: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class Presented:
    """A statement (its exact bytes) and its signature (raw Ed25519 base64, or SSHSIG armor)."""

    statement: bytes
    signature: str

    @classmethod
    def from_base64(cls, statement: str | None, signature: str | None) -> Presented | None:
        """Decode the two transported values; None if neither came.

        Raises `BadField` if only one came, or either is not base64 of UTF-8 within limits.
        """
        if statement is None and signature is None:
            return None
        if statement is None or signature is None:
            raise BadField("signature", "a signed deposit needs both the statement and signature")
        raw_statement = _unb64(statement, "statement", MAX_STATEMENT)
        raw_signature = _unb64(signature, "signature", MAX_SIGNATURE)
        try:
            return cls(raw_statement, raw_signature.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadField("signature", "not UTF-8") from None

    @classmethod
    def from_text(cls, statement: str | None, signature: str | None) -> Presented | None:
        """Return the statement (its exact UTF-8 bytes) and signature a form or a resumable
        upload carries as text; None if neither came (or both are empty).

        Raises `BadField` if only one came, or either is over its limit.
        """
        if not statement and not signature:
            return None
        if not statement or not signature:
            raise BadField("signature", "a signed deposit needs both the statement and signature")
        raw_statement = statement.encode("utf-8")
        if len(raw_statement) > MAX_STATEMENT:
            raise BadField("statement", f"at most {MAX_STATEMENT} bytes")
        if len(signature.encode("utf-8")) > MAX_SIGNATURE:
            raise BadField("signature", f"at most {MAX_SIGNATURE} bytes")
        return cls(raw_statement, signature)


def _unb64(value: str, name: str, limit: int) -> bytes:
    if len(value) > limit * 4 // 3 + 4:
        raise BadField(name, f"at most {limit} bytes")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadField(name, "not base64") from None


@dataclass(frozen=True, slots=True)
class Checked:
    """A statement whose signature verified by a key registered to its signer."""

    presented: Presented
    fields: dict[str, Any]
    key_id: str
    public_key: str
    by: Principal  # the signer as authenticated: the ledger entry names their credential

    @property
    def signer(self) -> str:
        """Return the account that signed (and deposits)."""
        return self.by.subject

    @property
    def statement_sha256(self) -> str:
        """Return the hex SHA-256 of the statement's exact bytes."""
        return hashlib.sha256(self.presented.statement).hexdigest()

    def check_content(self, sha256: str, size: int) -> None:
        """Check the streamed plaintext against the statement.

        Raises `BadField` if the SHA-256 or size differ from what was signed.
        """
        if sha256 != self.fields["sha256"]:
            raise BadField(
                "sha256",
                f"the signed statement declares {self.fields['sha256']}, the body has {sha256}",
            )
        if size != self.fields["size"]:
            raise BadField(
                "size", f"the signed statement declares {self.fields['size']}, the body has {size}"
            )


@dataclass(frozen=True, slots=True)
class SignatureView:
    """A signature kept with an item, as shown to those who may read the item."""

    item_id: str
    number: int
    role: str
    signer: str
    key_id: str
    statement_sha256: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class KeyView:
    """A registered depositor key."""

    key_id: str
    user: str
    public_key: str
    added_by: str
    added_at: datetime


def origin_of(vault: Vault) -> str:
    """Return the origin a statement must name: `TVAULT_LEDGER_ORIGIN`, else the log's default.

    Raises `keys.KeyringError` if the keyring holds no log key.
    """
    if vault.settings.ledger_origin:
        return vault.settings.ledger_origin
    signer = keys.LogSigner.from_bytes(vault.keyring.secret(LOG_SIGNING))
    return default_origin(signer.public_key_bytes())


def build_statement(
    *,
    origin: str,
    case: str,
    sha256: str,
    size: int,
    filename: str,
    kind: str,
    consent: Collection[str],
    key_id: str,
    signed_at: str,
) -> bytes:
    """Return the canonical JSON statement of a deposit (what the depositor signs)."""
    return keys.canonical_json(
        {
            "origin": origin,
            "case": case,
            "sha256": sha256,
            "size": size,
            "filename": filename,
            "kind": kind,
            "consent": sorted(set(consent)),
            "key_id": key_id,
            "signed_at": signed_at,
        }
    )


def parse_statement(data: bytes) -> dict[str, Any]:
    """Return the fields of statement `data`.

    Raises `BadField` unless `data` is an RFC 8785 canonical JSON object with exactly the
    statement's fields, each of its type.
    """
    try:
        fields = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadField("statement", "not JSON") from None
    if not isinstance(fields, dict) or set(fields) != FIELDS:
        raise BadField("statement", f"an object with exactly {', '.join(sorted(FIELDS))}")
    # The signed bytes are the stored bytes; canonical form makes their digest the statement's.
    if keys.canonical_json(fields) != data:
        raise BadField("statement", "not RFC 8785 canonical JSON")
    for name in FIELDS - {"size", "consent"}:
        if not isinstance(fields[name], str):
            raise BadField("statement", f"{name} must be a string")
    size = fields["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadField("statement", "size must be a non-negative integer")
    consent = fields["consent"]
    if not isinstance(consent, list) or not all(isinstance(s, str) for s in consent):
        raise BadField("statement", "consent must be a list of scopes")
    if len(fields["sha256"]) != 64 or fields["sha256"].strip("0123456789abcdef"):
        raise BadField("statement", "sha256 must be 64 lower-case hex digits")
    try:
        datetime.fromisoformat(fields["signed_at"].replace("Z", "+00:00"))
    except ValueError:
        raise BadField("statement", "signed_at must be an RFC 3339 time") from None
    return fields


def _signer_key(session: Session, key_id: str, signer: str) -> DepositorKey:
    key = session.get(DepositorKey, key_id)
    if key is None or key.user_name != signer:
        raise BadField("signature", f"the key {key_id} is not registered to {signer}")
    return key


def _verify(vault: Vault, principal: Principal, presented: Presented) -> Checked:
    fields = parse_statement(presented.statement)
    if fields["origin"] != origin_of(vault):
        raise BadField("statement", f"origin is not this vault's ({origin_of(vault)})")
    with vault.sessions() as session:
        key = _signer_key(session, fields["key_id"], principal.subject)
    try:
        keys.verify_signature(presented.statement, presented.signature, key.public_key)
    except keys.SignatureError:
        # One answer for every failure (CONVENTIONS.md "Recipes over primitives").
        raise BadField("signature", "does not verify with the signer's registered key") from None
    return Checked(presented, fields, key.key_id, key.public_key, principal)


def check_deposit(
    vault: Vault,
    principal: Principal,
    *,
    case_id: str,
    kind: str,
    filename: str | None,
    consent: Collection[str],
    presented: Presented,
    declared_size: int | None = None,
) -> Checked:
    """Check a deposit's statement before a byte is stored: signature, key, and the metadata.

    Raises `BadField` naming what differs (the content is checked later, `Checked.check_content`).
    """
    checked = _verify(vault, principal, presented)
    fields = checked.fields
    expected = {
        "case": case_id,
        "kind": kind,
        "filename": filename,
        "consent": sorted(set(consent)),
    }
    for name, value in expected.items():
        if fields[name] != value:
            raise BadField("statement", f"{name} differs from the deposit's")
    if declared_size is not None and declared_size != fields["size"]:
        raise BadField("size", f"the signed statement declares {fields['size']} bytes")
    return checked


def record(
    session: Session,
    *,
    item: Item,
    recipient: str,
    checked: Checked,
    role: str,
    now: datetime,
) -> ItemSignature:
    """Keep `checked` with `item` (sealed to the item's `recipient`) and append its ledger entry.

    Runs in the caller's transaction, so the signature commits with what it signs.
    """
    number = (
        session.scalar(
            select(func.max(ItemSignature.number)).where(ItemSignature.item_id == item.id)
        )
        or 0
    ) + 1
    row = ItemSignature(
        item_id=item.id,
        number=number,
        role=role,
        signer=checked.signer,
        key_id=checked.key_id,
        statement_sha256=checked.statement_sha256,
        sealed_statement=keys.seal_bytes(checked.presented.statement, [recipient]),
        signature=checked.presented.signature,
        public_key=checked.public_key,
        added_at=now,
    )
    session.add(row)
    session.flush()
    ledger.append(
        session,
        actor=checked.by,
        action=ledger.actions.DIGITAL_SIGNATURE_VALIDATION,
        item_id=item.id,
        case_id=item.case_id,
        details={
            "key_id": checked.key_id,
            "outcome": "valid",
            "role": role,
            "number": number,
            "statement_sha256": checked.statement_sha256,
        },
        now=now,
    )
    return row


def record_ciphertext(session: Session, item_id: str, sha256: str, size: int) -> None:
    """Record the SHA-256 and size of `item_id`'s stored object, in the caller's transaction."""
    session.add(ItemCiphertext(item_id=item_id, sha256=sha256, size=size))


class CiphertextDigest:
    """A write-through file that hashes what passes to `target` (the deposit's object writer)."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Hash `data`, then write it to the target."""
        self._hash.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)

    def hexdigest(self) -> str:
        """Return the hex SHA-256 of everything written."""
        return self._hash.hexdigest()


# --- custodian: keys --------------------------------------------------------------------------


def register_key(vault: Vault, principal: Principal, user: str, public_key: str) -> KeyView:
    """Register `public_key` (raw `ed25519:` or an OpenSSH line) to the account `user`.

    Raises `Forbidden` (not `user.manage`), `NotFound` (no account), `BadField` (malformed
    key), `Conflict` (the key is registered already).
    """
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))
    text = public_key.strip()
    if len(text) > MAX_PUBLIC_KEY or "\n" in text:
        raise BadField("public_key", "one public key line")
    try:
        key_id = keys.key_id(text)
    except keys.SignatureError:
        raise BadField("public_key", "not a raw ed25519: key or an OpenSSH public key") from None
    now = vault.clock()
    with vault.sessions.begin() as session:
        account = session.scalar(select(User).where(User.name == user))
        if account is None or account.disabled:
            raise NotFound(f"no account {user!r}")
        if session.get(DepositorKey, key_id) is not None:
            raise Conflict(f"the key {key_id} is registered already")
        row = DepositorKey(
            key_id=key_id, user_name=user, public_key=text, added_by=principal.subject, added_at=now
        )
        session.add(row)
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.KEY_REGISTRATION,
            details={"key_id": key_id, "account": user},
            now=now,
        )
    return _key_view(row)


def list_keys(vault: Vault, principal: Principal, user: str | None = None) -> list[KeyView]:
    """Return the registered keys (of `user` only, if given). Raises `Forbidden`."""
    authorize(vault.sessions, principal, actions.USER_MANAGE, Resource(kind=kinds.USER))
    with vault.sessions() as session:
        query = select(DepositorKey).order_by(DepositorKey.user_name, DepositorKey.added_at)
        if user is not None:
            query = query.where(DepositorKey.user_name == user)
        return [_key_view(k) for k in session.scalars(query)]


def _key_view(row: DepositorKey) -> KeyView:
    return KeyView(row.key_id, row.user_name, row.public_key, row.added_by, row.added_at)


# --- co-signatures ----------------------------------------------------------------------------


def cosign(vault: Vault, principal: Principal, item_id: str, presented: Presented) -> SignatureView:
    """Add `principal`'s signed statement about `item_id` (a co-signing therapist, a witness).

    The statement must name the item's case, kind, plaintext SHA-256 and size and this vault's
    origin, and be signed by a key registered to `principal`. Raises `NotFound`, `Forbidden`
    (`item.sign`), `Conflict` (shredded item) or `BadField` (any mismatch or bad signature).
    """
    item, _ = authorize_item(vault.sessions, principal, actions.ITEM_SIGN, item_id)
    checked = _verify(vault, principal, presented)
    fields = checked.fields
    for name, value in (("case", item.case_id), ("kind", item.kind)):
        if fields[name] != value:
            raise BadField("statement", f"{name} differs from the item's")
    checked.check_content(item.sha256, item.size)
    now = vault.clock()
    with vault.sessions.begin() as session:
        identity = item_identity(vault, session, item_id)
        row = record(
            session,
            item=item,
            recipient=keys.recipient_of(identity),
            checked=checked,
            role=COSIGNER,
            now=now,
        )
    return _view(row)


def list_signatures(vault: Vault, principal: Principal, item_id: str) -> list[SignatureView]:
    """Return the signatures kept with `item_id`. Raises `NotFound` or `Forbidden` (item.read)."""
    authorize_item(vault.sessions, principal, actions.ITEM_READ, item_id)
    with vault.sessions() as session:
        rows = session.scalars(
            select(ItemSignature)
            .where(ItemSignature.item_id == item_id)
            .order_by(ItemSignature.number)
        )
        return [_view(r) for r in rows]


def _view(row: ItemSignature) -> SignatureView:
    return SignatureView(
        row.item_id,
        row.number,
        row.role,
        row.signer,
        row.key_id,
        row.statement_sha256,
        row.added_at,
    )


# --- verification -----------------------------------------------------------------------------


def recheck(row: ItemSignature, item: Item, identity: str) -> str | None:
    """Re-check a kept signature against its item; return what is wrong, or None.

    Opens the sealed statement with the item's `identity`, checks its digest, the signature by
    the recorded public key, the key id, and that the statement still matches the item.
    """
    try:
        statement = keys.unseal_bytes(bytes(row.sealed_statement), identity)
    except keys.UnsealError:
        return "sealed statement does not open"
    if hashlib.sha256(statement).hexdigest() != row.statement_sha256:
        return "statement digest differs"
    try:
        keys.verify_signature(statement, row.signature, row.public_key)
        key_id = keys.key_id(row.public_key)
    except keys.SignatureError:
        return "signature does not verify"
    try:
        fields = parse_statement(statement)
    except BadField as exc:
        return f"statement malformed ({exc.detail})"
    if key_id != row.key_id or fields["key_id"] != key_id:
        return "key id differs"
    if (fields["sha256"], fields["size"], fields["case"]) != (item.sha256, item.size, item.case_id):
        return "statement does not match the item"
    return None


def signatures_of(session: Session) -> dict[str, list[ItemSignature]]:
    """Return every kept signature, by item id (for `tvault verify`)."""
    out: dict[str, list[ItemSignature]] = {}
    for row in session.scalars(select(ItemSignature).order_by(ItemSignature.number)):
        out.setdefault(row.item_id, []).append(row)
    return out


def ciphertexts_of(session: Session) -> dict[str, tuple[str, int]]:
    """Return the recorded ciphertext SHA-256 and size of every item that has one."""
    return {r.item_id: (r.sha256, r.size) for r in session.scalars(select(ItemCiphertext))}
