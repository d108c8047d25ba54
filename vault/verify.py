"""Verify everything the vault holds (`tvault verify`): objects, ledger chain, tree, checkpoints.

Checks, each failure named by what it concerns and its kind:

- every item's object exists and, opened with the item's own key, streams the plaintext whose
  SHA-256 and size were recorded at deposit (`fast`: the SHA-256 and size of the ciphertext
  recorded in the deposit's pass, without decrypting; size only for items deposited before it
  was recorded); an item without a key must have a `deletion` (crypto-shredding) entry;
- every signed statement kept with an item (depositor and co-signers) still verifies with the
  key recorded for it and names the item's SHA-256, size and case (`vault.signatures.recheck`);
- every ledger entry is RFC 8785 canonical JSON, in its place (`seq`), chained to the one
  before, with the copies in its row (hashes, columns, sealed-details digest) matching it, and
  the head row matching the last entry;
- every stored checkpoint is signed by the log key, records what its note says, has its copy in
  the object store, and its root is the root of the tree rebuilt from the entries themselves;
- every extracted text, sealed field and redacted rendition (`vault.sealed_fixity`);
- no object under a prefix rows refer to is older than the sweep's grace period and named by
  no row (`vault.unreferenced`: "unreferenced object");
- the tables agree with the ledger's replay of grants, consent, holds and shreds
  (`vault.replay`; `fast` never skips it), and the accounts and token register with its
  replay of credential entries (`vault.accountability`);
- with the ledger key: every entry's MAC, the head's and the checkpoint state's, and every
  checkpoint an auditor pinned (`trusted`) is consistent with the tree (`vault.ledger.integrity`);
  the entries after the newest checkpoint (the unsigned tail) are counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

import keys
from vault import accountability, item_keys, replay, sealed_fixity, signatures, unreferenced
from vault.db.models import Item, ItemKey
from vault.db.signature_tables import ItemSignature
from vault.ledger import actions, integrity, note
from vault.ledger.entry import format_time, parse
from vault.ledger.errors import LedgerError
from vault.ledger.tables import CHECKPOINT, GENESIS, HEAD, CheckpointRow, LedgerRow, LedgerState
from vault.ledger.tree import MerkleTree
from vault.parts import LEDGER_MAC, Vault

# Failure kinds.
OBJECT_MISSING: Final = "object missing"
OBJECT_UNREADABLE: Final = "object does not open with its key"
KEYS_SWAPPED: Final = "item keys swapped"
KEY_MISSING: Final = "item key missing"
KEY_UNWRAP: Final = "item key does not unwrap"
DIGEST_MISMATCH: Final = "plaintext digest differs"
SIZE_MISMATCH: Final = "size differs"
CIPHERTEXT_MISMATCH: Final = "ciphertext digest differs"
SIGNATURE_INVALID: Final = "signature invalid"
ENTRY_MISSING: Final = "ledger entry missing"
ENTRY_MALFORMED: Final = "ledger entry malformed"
ENTRY_MISPLACED: Final = "ledger entry out of place"
CHAIN_BROKEN: Final = "ledger chain broken"
ENTRY_ROW: Final = "ledger row disagrees with its entry"
HEAD_MISMATCH: Final = "ledger head disagrees with the entries"
CHECKPOINT_SIGNATURE: Final = "checkpoint signature invalid"
CHECKPOINT_ROOT: Final = "checkpoint root differs from the ledger"
CHECKPOINT_RECORD: Final = "checkpoint record differs from its note"
CHECKPOINT_COPY: Final = "checkpoint copy missing or different"
CHECKPOINT_UNRECORDED: Final = "checkpoint copy without a record"
ENTRY_MAC: Final = integrity.ENTRY_MAC
HEAD_MAC: Final = integrity.HEAD_MAC
STATE_MAC: Final = integrity.STATE_MAC
CHECKPOINT_GONE: Final = integrity.CHECKPOINT_GONE
TRUSTED_SIGNATURE: Final = integrity.TRUSTED_SIGNATURE
TRUSTED_EMPTY: Final = integrity.TRUSTED_EMPTY
TRUSTED_AHEAD: Final = integrity.TRUSTED_AHEAD
TRUSTED_FORK: Final = integrity.TRUSTED_FORK

CHECKPOINT_PREFIX: Final = "ledger/checkpoints/"
_AGE_CHUNK: Final = 64 * 1024
_READ: Final = 1024 * 1024
_ENTRIES = cast(Table, LedgerRow.__table__)
_STATE = cast(Table, LedgerState.__table__)
_CHECKPOINTS = cast(Table, CheckpointRow.__table__)
_BATCH: Final = 2000

# (phase, done, total): called as work advances, for a progress bar.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Failure:
    """One thing found wrong: `subject` names it (an item id, `entry 12`, `checkpoint 40`)."""

    subject: str
    kind: str
    detail: str = ""


@dataclass
class Report:
    """What was checked and what failed; `ok` only if nothing failed."""

    items: int = 0
    shredded: int = 0
    entries: int = 0
    checkpoints: int = 0
    signatures: int = 0
    # Entries after the newest signed checkpoint: covered by the ledger MAC, not yet signed.
    unsigned_tail: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failures

    def fail(self, subject: str, kind: str, detail: str = "") -> None:
        """Record a failure."""
        self.failures.append(Failure(subject, kind, detail))

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "ok": self.ok,
            "items": self.items,
            "shredded": self.shredded,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "signatures": self.signatures,
            "unsigned_tail": self.unsigned_tail,
            "failures": [
                {"subject": f.subject, "kind": f.kind, "detail": f.detail} for f in self.failures
            ],
            "notes": self.notes,
        }


def verify(
    vault: Vault,
    *,
    fast: bool = False,
    progress: Progress | None = None,
    trusted: Sequence[str] = (),
) -> Report:
    """Check everything the vault holds and return the report (never raises on a finding).

    `trusted` holds signed checkpoints an auditor kept; each must be consistent with the ledger.
    Raises only if the database, store or keyring cannot be reached at all.
    """
    report = Report()
    tick = progress or (lambda _phase, _done, _total: None)
    key = vault.keyring.secret(LEDGER_MAC)
    with vault.sessions() as session:
        _verify_items(vault, session, report, fast, tick)
        _verify_state(vault, session, report, fast)
        tree = MerkleTree(_verify_ledger(session, report, tick, key))
        newest = _verify_checkpoints(vault, session, report, tree, tick, key)
    vkey = vault.checkpointer.verifier_key()
    integrity.check_trusted(trusted, vkey, tree, report.fail, report.notes.append)
    report.unsigned_tail = max(0, tree.size - newest)
    report.notes.append(
        f"unsigned tail: {report.unsigned_tail} entries after checkpoint {newest} "
        "(covered by the ledger MAC until the next checkpoint signs them)"
    )
    return report


# --- objects ----------------------------------------------------------------------------------


def _verify_items(
    vault: Vault, session: Session, report: Report, fast: bool, tick: Progress
) -> None:
    items = session.scalars(select(Item).order_by(Item.id)).all()
    shredded = {
        item_id
        for (item_id,) in session.execute(
            select(_ENTRIES.c.item_id).where(_ENTRIES.c.action == actions.DELETION)
        )
    }
    wrapped = {k.item_id: bytes(k.wrapped) for k in session.scalars(select(ItemKey))}
    signed = signatures.signatures_of(session)
    ciphertexts = signatures.ciphertexts_of(session) if fast else {}
    identities: dict[str, str] = {}
    unreadable: list[Item] = []
    for done, item in enumerate(items, 1):
        tick("objects", done, len(items))
        report.items += 1
        if item.id not in wrapped:
            # A shredded item's object may be gone (deleted) or remain (locked, unreadable);
            # either is the expected tombstone, not a failure.
            if item.id in shredded:
                report.shredded += 1
            else:
                report.fail(item.id, KEY_MISSING, "no key and no shredding entry")
            continue
        if not vault.store.exists(item.object_name):
            report.fail(item.id, OBJECT_MISSING, item.object_name)
            continue
        try:
            identity = item_keys.open_identity(vault.keyring, item.id, wrapped[item.id])
        except Exception as exc:  # any keyring failure is the finding
            report.fail(item.id, KEY_UNWRAP, type(exc).__name__)
            continue
        _check_signatures(item, identity, signed.get(item.id, []), report)
        if fast:
            recorded = ciphertexts.get(item.id)
            if recorded is None:
                _check_size(vault, item, report)
            else:
                _check_ciphertext(vault, item, recorded, report)
            continue
        identities[item.id] = identity
        digest, size = _plaintext_digest(vault, item.object_name, identity)
        if digest is None:
            unreadable.append(item)
        elif digest != item.sha256:
            report.fail(item.id, DIGEST_MISMATCH, f"recorded {item.sha256}, found {digest}")
        elif size != item.size:
            report.fail(item.id, SIZE_MISMATCH, f"recorded {item.size}, found {size}")
    _explain_unreadable(vault, unreadable, identities, report)
    if fast:
        report.notes.append(
            "--fast: ciphertext digests compared (size only where none was recorded), not opened"
        )


def _check_signatures(item: Item, identity: str, rows: list[ItemSignature], report: Report) -> None:
    for row in rows:
        report.signatures += 1
        problem = signatures.recheck(row, item, identity)
        if problem is not None:
            report.fail(
                item.id, SIGNATURE_INVALID, f"signature {row.number} by {row.key_id}: {problem}"
            )


def _check_ciphertext(vault: Vault, item: Item, recorded: tuple[str, int], report: Report) -> None:
    sha256, expected = recorded
    size = vault.store.size(item.object_name)
    if size != expected:
        report.fail(item.id, SIZE_MISMATCH, f"object is {size} bytes, {expected} recorded")
        return
    digest = hashlib.sha256()
    with vault.store.open(item.object_name) as source:
        while block := source.read(_READ):
            digest.update(block)
    if digest.hexdigest() != sha256:
        report.fail(item.id, CIPHERTEXT_MISMATCH, f"recorded {sha256}, found {digest.hexdigest()}")


def _check_size(vault: Vault, item: Item, report: Report) -> None:
    # age v1 (C2SP age): a 16-byte nonce, then one 16-byte tag per 64 KiB chunk, after a header.
    chunks = max(1, -(-item.size // _AGE_CHUNK))
    least = item.size + 16 + 16 * chunks
    size = vault.store.size(item.object_name)
    if size < least:
        report.fail(item.id, SIZE_MISMATCH, f"object is {size} bytes, at least {least} expected")


def _plaintext_digest(vault: Vault, name: str, identity: str) -> tuple[str | None, int]:
    # One thread: handing batches to a hashing thread measured slower here (~870 against
    # ~940 MiB/s), the decryption holding the GIL the hashing thread waits for.
    digest, size = hashlib.sha256(), 0
    try:
        with vault.store.open(name) as source:
            for chunk in keys.open_stream(source, identity):
                digest.update(chunk)
                size += len(chunk)
    except keys.UnsealError:
        return None, size
    return digest.hexdigest(), size


def _opens(vault: Vault, name: str, identity: str) -> bool:
    # The header and first chunk are enough to tell a right key from a wrong one.
    try:
        with vault.store.open(name) as source:
            next(iter(keys.open_stream(source, identity)), None)
    except keys.UnsealError:
        return False
    return True


def _explain_unreadable(
    vault: Vault, unreadable: list[Item], identities: dict[str, str], report: Report
) -> None:
    """Name swapped keys: an unreadable object that opens with another unreadable item's key."""
    for item in unreadable:
        owner = next(
            (
                other.id
                for other in unreadable
                if other.id != item.id and _opens(vault, item.object_name, identities[other.id])
            ),
            None,
        )
        if owner is not None:
            report.fail(item.id, KEYS_SWAPPED, f"its object opens with the key stored for {owner}")
        else:
            report.fail(item.id, OBJECT_UNREADABLE, "corrupted object or wrong key")


def _verify_state(vault: Vault, session: Session, report: Report, fast: bool) -> None:
    # An item whose key is already named wrong opens none of its sealed fields either: one
    # finding says it.
    bad_keys = {f.subject for f in report.failures if f.kind in (KEYS_SWAPPED, KEY_UNWRAP)}
    sealed, sealed_notes = sealed_fixity.check(vault, session, fast=fast)
    replayed, replay_notes = replay.check(session)
    credentials, credential_notes = accountability.check(session)
    stray, stray_notes = unreferenced.check(vault)
    for subject, kind, detail in [f for f in sealed if f[0] not in bad_keys] + replayed:
        report.fail(subject, kind, detail)
    for subject, kind, detail in credentials + stray:
        report.fail(subject, kind, detail)
    report.notes.extend(sealed_notes + replay_notes + credential_notes + stray_notes)


# --- ledger -----------------------------------------------------------------------------------


def _rows(session: Session) -> Iterator[Any]:
    position = -1
    while True:
        rows = session.execute(
            select(_ENTRIES).where(_ENTRIES.c.seq > position).order_by(_ENTRIES.c.seq).limit(_BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        position = int(rows[-1].seq)


def _verify_ledger(session: Session, report: Report, tick: Progress, key: bytes) -> list[bytes]:
    """Check every entry; return the leaf hashes recomputed from the entries themselves."""
    head = session.execute(select(_STATE).where(_STATE.c.name == HEAD)).one()
    total, head_hash = int(head.size), bytes(head.hash)
    macs = integrity.EntryMacs(key)
    leaves: list[bytes] = []
    expected, prev = 0, GENESIS
    for row in _rows(session):
        tick("ledger", row.seq + 1, max(total, row.seq + 1))
        report.entries += 1
        data = bytes(row.entry)
        subject = f"entry {row.seq}"
        if row.seq != expected:
            missing = f"{expected}" if row.seq == expected + 1 else f"{expected}-{row.seq - 1}"
            report.fail(f"entry {missing}", ENTRY_MISSING, "rows deleted from the ledger")
        try:
            entry = parse(data)
        except LedgerError as exc:
            report.fail(subject, ENTRY_MALFORMED, str(exc))
            entry = None
        if entry is not None:
            if entry.seq != row.seq:
                report.fail(subject, ENTRY_MISPLACED, f"the entry says seq {entry.seq}")
            if entry.prev_hash != prev:
                report.fail(subject, CHAIN_BROKEN, "prev is not the hash of the entry before")
            _check_row(row, entry, data, report)
        prev = hashlib.sha256(data).digest()
        macs.check(row.seq, prev, row.mac)
        leaves.append(hashlib.sha256(b"\x00" + data).digest())
        expected = row.seq + 1
    if total != expected or total != report.entries or head_hash != prev:
        report.fail(
            "ledger head",
            HEAD_MISMATCH,
            f"head says {total} entries; {report.entries} rows, last seq {expected - 1}",
        )
    macs.report(report.fail)
    integrity.check_head(key, total, head_hash, head.mac, report.fail)
    return leaves


def _check_row(row: Any, entry: Any, data: bytes, report: Report) -> None:
    subject = f"entry {row.seq}"
    wrong = [
        name
        for name, stored, actual in [
            ("entry_hash", bytes(row.entry_hash), hashlib.sha256(data).digest()),
            ("leaf_hash", bytes(row.leaf_hash), hashlib.sha256(b"\x00" + data).digest()),
            ("time", row.time, format_time(entry.time)),
            ("actor", row.actor, entry.actor),
            ("action", row.action, entry.action),
            ("item_id", row.item_id, entry.item_id),
            ("case_id", row.case_id, entry.case_id),
        ]
        if stored != actual
    ]
    sealed = row.sealed_details
    digest = hashlib.sha256(bytes(sealed)).hexdigest() if sealed is not None else None
    if digest != entry.sealed_sha256:
        wrong.append("sealed_details")
    if wrong:
        report.fail(subject, ENTRY_ROW, "edited: " + ", ".join(wrong))


# --- checkpoints ------------------------------------------------------------------------------


def _verify_checkpoints(
    vault: Vault, session: Session, report: Report, tree: MerkleTree, tick: Progress, key: bytes
) -> int:
    """Check every checkpoint record and stored copy; return the newest recorded size (or 0)."""
    log = vault.checkpointer
    vkey = log.verifier_key()
    rows = session.execute(select(_CHECKPOINTS).order_by(_CHECKPOINTS.c.size)).all()
    recorded = set()
    for done, row in enumerate(rows, 1):
        tick("checkpoints", done, len(rows))
        report.checkpoints += 1
        subject = f"checkpoint {row.size}"
        recorded.add(row.object_name)
        body = _check_note(row.note, vkey, tree, subject, report)
        if body is not None and (body.size, body.root) != (row.size, bytes(row.root)):
            report.fail(subject, CHECKPOINT_RECORD, "size or root differ from the signed note")
        try:
            with vault.store.open(row.object_name) as stored:
                copy = stored.read()
        except Exception:  # missing or unreadable copy: the finding
            copy = None
        if copy != row.note.encode():
            report.fail(subject, CHECKPOINT_COPY, row.object_name)
    # A signed copy in the store without its database record: its row was deleted from the
    # table, or a process stopped between storing the copy and committing the row (the copy
    # goes first, `ledger.checkpoints.create`; the crash suite met it). Told apart below.
    unrecorded: list[str] = []
    for name in sorted(vault.store.names(CHECKPOINT_PREFIX)):
        if name in recorded:
            continue
        report.checkpoints += 1
        with vault.store.open(name) as stored:
            text = stored.read().decode("utf-8", "replace")
        before = len(report.failures)
        _check_note(text, vkey, tree, name, report)
        if len(report.failures) > before:
            report.fail(name, CHECKPOINT_UNRECORDED, "its row in ledger_checkpoints is missing")
        else:
            unrecorded.append(name)
    before = len(report.failures)
    state = session.execute(select(_STATE).where(_STATE.c.name == CHECKPOINT)).one()
    latest = rows[-1] if rows else None
    if latest is not None and (state.size, bytes(state.hash)) != (latest.size, bytes(latest.root)):
        report.fail("checkpoint state", CHECKPOINT_RECORD, "differs from the newest checkpoint")
    records = {int(row.size): bytes(row.root) for row in rows}
    integrity.check_state(key, state.size, bytes(state.hash), state.mac, records, report.fail)
    for name in unrecorded:
        if len(report.failures) > before:
            report.fail(name, CHECKPOINT_UNRECORDED, "its row in ledger_checkpoints is missing")
        else:
            # The state's MAC counts every recorded checkpoint, so a deleted row cannot pass;
            # this copy is a true signed checkpoint of this very ledger that never committed.
            report.notes.append(
                f"{name}: a signed checkpoint of this ledger whose record never committed "
                "(a process stopped between storing it and recording it); kept, harmless"
            )
    return int(latest.size) if latest is not None else 0


def _check_note(
    text: str, vkey: str, tree: MerkleTree, subject: str, report: Report
) -> note.Checkpoint | None:
    try:
        body = note.parse_checkpoint(note.open_note(text, vkey, keys.verify_ed25519))
    except LedgerError as exc:
        report.fail(subject, CHECKPOINT_SIGNATURE, str(exc))
        return None
    if body.size > tree.size:
        report.fail(subject, CHECKPOINT_ROOT, f"signed size {body.size} > {tree.size} entries")
    elif tree.root(body.size) != body.root:
        report.fail(subject, CHECKPOINT_ROOT, "the entries no longer give the signed root")
    return body
