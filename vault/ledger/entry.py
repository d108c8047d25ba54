"""The ledger entry: its RFC 8785 canonical JSON form, its chain hash and its Merkle leaf hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import rfc8785

from vault.ledger.errors import LedgerError

FORMAT_VERSION: Final = 1
TOOL: Final = "testimony-vault"
TOOL_VERSION: Final = "0.1.0"

# Keys that name things promise 1 (DESIGN.md) says must be sealed. `details` refuses them at any
# depth, so a caller cannot put a query or a title in the clear by mistake; such data goes in
# `sealed_details`, already sealed by the caller.
SEALED_KEYS: Final = frozenset(
    {
        "content",
        "filename",
        "name",
        "note",
        "notes",
        "original_filename",
        "q",
        "query",
        "snippet",
        "text",
        "title",
    }
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One committed (or about to commit) ledger entry.

    `canonical` is the RFC 8785 JSON of the entry and is what the chain and the tree hash;
    every other field is read from it.
    """

    seq: int
    time: datetime
    actor: str
    action: str
    item_id: str | None
    case_id: str | None
    details: Mapping[str, Any]
    sealed_sha256: str | None
    prev_hash: bytes
    canonical: bytes

    @property
    def entry_hash(self) -> bytes:
        """SHA-256 of the canonical JSON; the next entry's `prev`."""
        return entry_hash(self.canonical)

    @property
    def leaf_hash(self) -> bytes:
        """RFC 9162 2.1.1 leaf hash of the canonical JSON."""
        return leaf_hash(self.canonical)


def entry_hash(canonical: bytes) -> bytes:
    """Return the chain hash of an entry: SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical).digest()


def leaf_hash(canonical: bytes) -> bytes:
    """Return the RFC 9162 leaf hash of an entry.

    RFC 9162 2.1.1: leaves are hashed with a 0x00 prefix and nodes with 0x01, so a leaf can never
    be passed off as an inner node (second-preimage resistance).
    """
    return hashlib.sha256(b"\x00" + canonical).digest()


def format_time(moment: datetime) -> str:
    """Format `moment` as UTC RFC 3339 with microseconds. Raises `LedgerError` if it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise LedgerError("ledger times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by `format_time`. Raises `LedgerError` if malformed."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise LedgerError(f"malformed ledger time {text!r}") from exc


def check_details(
    details: Mapping[str, Any], path: str = "details", *, encodable: bool = False
) -> None:
    """Refuse `details` that could carry sealed data (or, with `encodable`, that RFC 8785
    cannot encode). Raises `LedgerError` naming the problem."""
    for key, value in details.items():
        if not isinstance(key, str):
            raise LedgerError(f"{path} keys must be strings")
        if key.lower() in SEALED_KEYS:
            raise LedgerError(f"{path}.{key} must be sealed (use sealed_details), not in the clear")
        if isinstance(value, Mapping):
            check_details(value, f"{path}.{key}")
    if encodable:
        try:
            rfc8785.dumps(dict(details))
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
            raise LedgerError(f"ledger entry cannot be encoded as RFC 8785 JSON: {exc}") from exc


def build(
    *,
    seq: int,
    time: datetime,
    actor: str,
    action: str,
    item_id: str | None,
    case_id: str | None,
    details: Mapping[str, Any],
    sealed: bytes | None,
    prev_hash: bytes,
    tool: str = TOOL,
    tool_version: str = TOOL_VERSION,
) -> LedgerEntry:
    """Build the entry and its canonical JSON. Raises `LedgerError` if it cannot be encoded."""
    sealed_sha256 = hashlib.sha256(sealed).hexdigest() if sealed is not None else None
    document: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "time": format_time(time),
        "actor": actor,
        "action": action,
        "item": item_id,
        "case": case_id,
        "tool": tool,
        "tool_version": tool_version,
        "details": dict(details),
        # The sealed bytes stay in their own column; the chain covers them through this digest.
        "sealed_sha256": sealed_sha256,
        "prev": prev_hash.hex(),
    }
    try:
        canonical = rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise LedgerError(f"ledger entry cannot be encoded as RFC 8785 JSON: {exc}") from exc
    return LedgerEntry(
        seq=seq,
        time=parse_time(document["time"]),
        actor=actor,
        action=action,
        item_id=item_id,
        case_id=case_id,
        details=json.loads(json.dumps(document["details"])),
        sealed_sha256=sealed_sha256,
        prev_hash=prev_hash,
        canonical=canonical,
    )


def parse(canonical: bytes) -> LedgerEntry:
    """Read an entry from its canonical JSON. Raises `LedgerError` if it is not one."""
    try:
        document = json.loads(canonical)
        entry = LedgerEntry(
            seq=int(document["seq"]),
            time=parse_time(document["time"]),
            actor=str(document["actor"]),
            action=str(document["action"]),
            item_id=document["item"],
            case_id=document["case"],
            details=document["details"],
            sealed_sha256=document["sealed_sha256"],
            prev_hash=bytes.fromhex(document["prev"]),
            canonical=canonical,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(f"malformed ledger entry: {exc}") from exc
    if document.get("v") != FORMAT_VERSION:
        raise LedgerError(f"unknown ledger entry version {document.get('v')!r}")
    if rfc8785.dumps(document) != canonical:
        raise LedgerError("ledger entry is not in RFC 8785 canonical form")
    return entry
