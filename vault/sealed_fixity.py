"""Check what is sealed beside the originals (`tvault verify`): texts, fields, renditions.

An original is checked against its recorded digest; so is everything else the vault keeps
sealed, or a flipped byte there would pass unnoticed:

- every extracted-text object exists and, opened with the item's key, gives the text whose
  SHA-256 its `metadata extraction` ledger entry records (`details.text_sha256`; older entries
  only recorded `chars`, which is compared instead). `fast` compares the SHA-256 of the sealed
  object with `details.object_sha256` without decrypting (existence only for older entries);
  a text row needs its ledger entry, and a ledger entry of an item not shredded its row;
- every sealed field opens with its key, which authenticates it (age's AEAD: a flipped byte
  fails): case names (the vault's metadata identity), item metadata (title, filename, notes),
  the text's metadata, identity fields and consent forms (the item's identity); not in `fast`;
- every redacted rendition opens and gives the SHA-256 and size recorded for it (`fast`:
  existence only).

A retired KEK epoch whose key is still in the keyring (a shred interrupted after its commit) is
a finding too: until it goes, database copies from before that shred still open.

Items without a key (shredded) are skipped here: `vault.replay` checks that nothing of theirs
is left.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable
from typing import Final, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

import keys
from vault import item_keys
from vault.db import Case, Item, ItemKey
from vault.db.access_tables import ConsentRecord, ItemIdentity, RedactedRendition
from vault.db.jobs_tables import ItemText
from vault.ledger import actions
from vault.ledger.tables import LedgerRow
from vault.parts import METADATA_IDENTITY, Vault

SEALED_FIELD: Final = "sealed field does not open"
TEXT_MISSING: Final = "extracted text missing"
TEXT_UNREADABLE: Final = "extracted text does not open with its key"
TEXT_DIGEST: Final = "extracted text digest differs"
TEXT_UNRECORDED: Final = "extracted text without its ledger entry"
RENDITION_MISMATCH: Final = "redacted rendition differs"
EPOCH_LINGERS: Final = "retired key-encryption epoch still in the keyring"

_ENTRIES = cast(Table, LedgerRow.__table__)
_READ: Final = 1024 * 1024

Finding = tuple[str, str, str]


def check(vault: Vault, session: Session, *, fast: bool) -> tuple[list[Finding], list[str]]:
    """Check texts, sealed fields and renditions; return (findings, notes). Never raises on a
    finding; raises only if the database or store cannot be reached."""
    identity = _identities(vault, session)
    findings: list[Finding] = [
        (f"epoch {epoch}", EPOCH_LINGERS, "the next shred deletes it")
        for epoch in item_keys.lingering(vault, session)
    ]
    findings += _texts(vault, session, identity, fast)
    findings += _renditions(vault, session, identity, fast)
    if fast:
        return findings, ["--fast: sealed fields not opened; texts by ciphertext digest"]
    findings += _fields(vault, session, identity)
    return findings, []


def _identities(vault: Vault, session: Session) -> Callable[[str], str | None]:
    """Return a lookup of each keyed item's identity (None: shredded, or its key is bad, which
    `vault.verify` reports)."""
    wrapped = {i: bytes(w) for i, w in session.execute(select(ItemKey.item_id, ItemKey.wrapped))}
    cache: dict[str, str | None] = {}

    def identity(item_id: str) -> str | None:
        if item_id not in cache:
            try:
                cache[item_id] = item_keys.open_identity(vault.keyring, item_id, wrapped[item_id])
            except Exception:  # no key, or one that does not unwrap: reported elsewhere
                cache[item_id] = None
        return cache[item_id]

    return identity


def _extractions(session: Session) -> dict[str, dict[str, object]]:
    """The newest `metadata extraction` entry's details per item, read from the entry itself."""
    found: dict[str, dict[str, object]] = {}
    query = (
        select(_ENTRIES.c.entry)
        .where(_ENTRIES.c.action == actions.METADATA_EXTRACTION)
        .order_by(_ENTRIES.c.seq)
    )
    for (data,) in session.execute(query):
        try:
            entry = json.loads(bytes(data))
            if entry["action"] == actions.METADATA_EXTRACTION and entry["item"]:
                found[str(entry["item"])] = dict(entry["details"])
        except (ValueError, KeyError, TypeError):
            continue  # malformed: the chain check reports it
    return found


def _texts(
    vault: Vault, session: Session, identity: Callable[[str], str | None], fast: bool
) -> list[Finding]:
    findings: list[Finding] = []
    recorded = _extractions(session)
    rows = {row.item_id: row for row in session.scalars(select(ItemText))}
    keyed = set(session.scalars(select(ItemKey.item_id)))
    for item_id in sorted(set(recorded) - set(rows)):
        if item_id in keyed:
            findings.append((item_id, TEXT_MISSING, "its row is gone; the ledger records it"))
    for item_id, row in sorted(rows.items()):
        secret = identity(item_id)
        if secret is None:
            continue
        details = recorded.get(item_id)
        if details is None:
            findings.append((item_id, TEXT_UNRECORDED, row.object_name))
        if not vault.store.exists(row.object_name):
            findings.append((item_id, TEXT_MISSING, row.object_name))
            continue
        if fast:
            expected = (details or {}).get("object_sha256")
            if expected is not None and _object_sha256(vault, row.object_name) != expected:
                findings.append((item_id, TEXT_DIGEST, "the sealed object's digest differs"))
            continue
        found = _open_text(vault, row.object_name, secret)
        if found is None:
            findings.append((item_id, TEXT_UNREADABLE, row.object_name))
            continue
        digest, chars = found
        if details is not None and details.get("text_sha256", digest) != digest:
            findings.append((item_id, TEXT_DIGEST, f"recorded {details['text_sha256']}"))
        elif details is not None and details.get("chars", chars) != chars:
            findings.append(
                (item_id, TEXT_DIGEST, f"{chars} characters, {details['chars']} recorded")
            )
    return findings


def _object_sha256(vault: Vault, name: str) -> str:
    digest = hashlib.sha256()
    with vault.store.open(name) as source:
        while block := source.read(_READ):
            digest.update(block)
    return digest.hexdigest()


def _open_text(vault: Vault, name: str, identity: str) -> tuple[str, int] | None:
    """Return the SHA-256 and the length in characters of the sealed text, or None."""
    digest, chars = hashlib.sha256(), 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with vault.store.open(name) as source:
            for chunk in keys.open_stream(source, identity):
                digest.update(chunk)
                chars += len(decoder.decode(chunk))
            chars += len(decoder.decode(b"", final=True))
    except (keys.UnsealError, UnicodeDecodeError):
        return None
    return digest.hexdigest(), chars


def _renditions(
    vault: Vault, session: Session, identity: Callable[[str], str | None], fast: bool
) -> list[Finding]:
    findings: list[Finding] = []
    for row in session.scalars(select(RedactedRendition).order_by(RedactedRendition.item_id)):
        secret = identity(row.item_id)
        if secret is None:
            continue
        if not vault.store.exists(row.object_name):
            findings.append((row.item_id, RENDITION_MISMATCH, f"{row.object_name} is missing"))
            continue
        if fast:
            continue
        digest, size = hashlib.sha256(), 0
        try:
            with vault.store.open(row.object_name) as source:
                for chunk in keys.open_stream(source, secret):
                    digest.update(chunk)
                    size += len(chunk)
        except keys.UnsealError:
            findings.append((row.item_id, RENDITION_MISMATCH, "does not open with the item key"))
            continue
        if (digest.hexdigest(), size) != (row.sha256, row.size):
            findings.append((row.item_id, RENDITION_MISMATCH, "digest or size differ"))
    return findings


def _fields(vault: Vault, session: Session, identity: Callable[[str], str | None]) -> list[Finding]:
    findings: list[Finding] = []
    metadata = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    for case_id, sealed in session.execute(select(Case.id, Case.sealed_name).order_by(Case.id)):
        if not _opens(sealed, metadata):
            findings.append((f"case {case_id}", SEALED_FIELD, "case name"))
    fields: list[tuple[str, str, bytes | None]] = [
        (i, "title, filename and notes", s)
        for i, s in session.execute(select(Item.id, Item.sealed_meta))
    ]
    fields += [
        (i, "text metadata", s)
        for i, s in session.execute(select(ItemText.item_id, ItemText.sealed_meta))
    ]
    fields += [
        (i, "identity fields", s)
        for i, s in session.execute(select(ItemIdentity.item_id, ItemIdentity.sealed))
    ]
    forms = select(ConsentRecord.item_id, ConsentRecord.version, ConsentRecord.sealed_form).where(
        ConsentRecord.sealed_form.is_not(None)
    )
    fields += [(i, f"consent form of version {v}", s) for i, v, s in session.execute(forms)]
    for item_id, what, blob in sorted(fields, key=lambda f: (f[0], f[1])):
        secret = identity(item_id)
        if secret is not None and blob is not None and not _opens(blob, secret):
            findings.append((item_id, SEALED_FIELD, what))
    return findings


def _opens(sealed: bytes, identity: str) -> bool:
    try:
        keys.unseal_bytes(bytes(sealed), identity)
    except keys.UnsealError:
        return False
    return True
