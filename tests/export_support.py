"""Real material for export-bag tests: age-sealed objects in a `LocalObjectStore`, a SQLite
ledger with ingestion entries, signed checkpoints and their proofs, signed statements."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, create_engine
from sqlalchemy.orm import Session, sessionmaker

import keys
from vault import ledger
from vault.export_bag import BagInfo, BagItem, CustodyRecord
from vault.ledger import actions, mac
from vault.ledger.checkpoints import Checkpointer
from vault.ledger.service import make_checkpointer
from vault.ledger.tables import CheckpointRow, LedgerRow, LedgerState
from vault.signatures import build_statement
from vault.storage import LocalObjectStore

TABLES = [cast(Table, t.__table__) for t in (LedgerRow, LedgerState, CheckpointRow)]
ORIGIN = "vault.test/export"
CASE = "casecasecasecasecasecaseca"


class _Checkpoints:
    """The checkpoint copies, kept in memory (the `CheckpointStore` port)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_locked(self, name: str, data: bytes) -> None:
        self.objects[name] = data


@dataclass
class Source:
    """One item's plaintext as the test deposited it (to compare what comes out)."""

    item_id: str
    data: bytes
    text: bytes | None
    filename: str
    redacted: bool = False


@dataclass
class Material:
    """Everything `write_bag` takes, built from real parts, plus what the tests compare."""

    store: LocalObjectStore
    sessions: sessionmaker[Session]
    checkpointer: Checkpointer
    sources: list[Source] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)  # object name -> age identity
    signers: dict[str, tuple[str, str]] = field(default_factory=dict)  # item -> (secret, public)
    seqs: dict[str, list[int]] = field(default_factory=dict)
    renditions: dict[str, bytes] = field(default_factory=dict)

    def put(self, name: str, data: bytes) -> None:
        """Seal `data` to a fresh identity and store it under `name`, as a deposit does."""
        identity, recipient = keys.generate_identity()
        with self.store.writer(name) as writer:
            keys.seal(io.BytesIO(data), cast(Any, writer), [recipient])
            writer.commit()
        self.identities[name] = identity

    def stream(self, name: str) -> Any:
        """Return a `Stream` of the stored object `name`, age-decrypted chunk by chunk."""

        @contextlib.contextmanager
        def opened() -> Iterator[Iterable[bytes]]:
            with self.store.open(name) as src:
                yield keys.open_stream(src, self.identities[name])

        return opened


def ledger_sessions(path: Path) -> sessionmaker[Session]:
    """A SQLite ledger (the vault's tables) with a bound MAC key."""
    engine = create_engine(f"sqlite:///{path}")
    LedgerRow.metadata.create_all(engine, tables=TABLES)
    sessions = sessionmaker(engine, expire_on_commit=False)
    key = hashlib.sha256(b"export tests").digest()
    with sessions.begin() as session:
        mac.upgrade(session, key)
    mac.bind(sessions, key)
    return sessions


def material(tmp_path: Path) -> Material:
    """An empty object store and ledger under `tmp_path`."""
    sessions = ledger_sessions(tmp_path / "ledger.sqlite")
    checkpointer = make_checkpointer(
        sessions, signer=keys.LogSigner.generate(), store=_Checkpoints(), origin=ORIGIN
    )
    return Material(LocalObjectStore(tmp_path / "objects"), sessions, checkpointer)


def deposit(
    stuff: Material,
    item_id: str,
    data: bytes,
    *,
    text: bytes | None = b"",
    filename: str = "testimonio.pdf",
    signed: bool = True,
) -> None:
    """Store an item's object (and text), record its ingestion in the ledger."""
    stuff.put(f"items/{item_id}", data)
    if text is not None:
        stuff.put(f"texts/{item_id}", text)
    digest = hashlib.sha256(data).hexdigest()
    with stuff.sessions.begin() as session:
        entry = ledger.append(
            session,
            actor="therapist",
            action=actions.INGESTION,
            item_id=item_id,
            case_id=CASE,
            details={"sha256": digest, "size": len(data), "kind": "testimony", "signed": signed},
        )
        # As the extraction stage records it: the SHA-256 of the text's UTF-8 bytes.
        extracted = {} if text is None else {"text_sha256": hashlib.sha256(text).hexdigest()}
        other = ledger.append(
            session,
            actor="worker",
            action=actions.METADATA_EXTRACTION,
            item_id=item_id,
            case_id=CASE,
            details=extracted,
        )
    stuff.seqs[item_id] = [entry.seq, other.seq]
    if signed:
        stuff.signers[item_id] = keys.generate_signing_key()
    stuff.sources.append(Source(item_id, data, text, filename))


def redact(stuff: Material, item_id: str, rendition: bytes) -> None:
    """Store a redacted rendition of `item_id` and record it as the vault does."""
    stuff.put(f"renditions/{item_id}", rendition)
    with stuff.sessions.begin() as session:
        entry = ledger.append(
            session,
            actor="custodian",
            action=actions.INGESTION,
            item_id=item_id,
            case_id=CASE,
            details={
                "rendition": "redacted",
                "sha256": hashlib.sha256(rendition).hexdigest(),
                "size": len(rendition),
            },
        )
    stuff.seqs[item_id].append(entry.seq)
    source = next(s for s in stuff.sources if s.item_id == item_id)
    source.redacted = True
    stuff.renditions[item_id] = rendition


def statement_of(source: Source, public: str) -> bytes:
    """The deposit statement a depositor signs for `source` with key `public`."""
    return build_statement(
        origin=ORIGIN,
        case=CASE,
        sha256=hashlib.sha256(source.data).hexdigest(),
        size=len(source.data),
        filename=source.filename,
        kind="testimony",
        consent=["truth_commission"],
        key_id=keys.key_id(public),
        signed_at="2026-12-01T10:00:00Z",
    )


def bag_item(stuff: Material, source: Source, **changes: Any) -> BagItem:
    """The `BagItem` of a deposited source, reading its stored objects."""
    statement = signature = public = None
    if source.item_id in stuff.signers:
        secret, public = stuff.signers[source.item_id]
        statement = statement_of(source, public)
        signature = keys.sign(statement, secret)
    data, name = source.data, f"items/{source.item_id}"
    if source.redacted:
        data, name = stuff.renditions[source.item_id], f"renditions/{source.item_id}"
    fields: dict[str, Any] = {
        "item_id": source.item_id,
        "kind": "testimony",
        "filename": source.filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "redacted": source.redacted,
        "open_original": stuff.stream(name),
        "metadata": {
            "case_id": CASE,
            "title": f"Testimonio {source.item_id[:4]}",
            "language": "es",
            "created_at": "2026-11-30T09:00:00Z",
            "consent": ["truth_commission", "archive"],
            "tags": ["detention"],
            "custody_entries": stuff.seqs[source.item_id],
        },
        "open_text": stuff.stream(f"texts/{source.item_id}") if source.text is not None else None,
        "text_size": len(source.text) if source.text is not None else None,
        "statement": statement,
        "signature": signature,
        "public_key": public,
    }
    fields.update(changes)
    return BagItem(**fields)


def custody(stuff: Material, previous: str | None = None) -> CustodyRecord:
    """A checkpoint now, with proofs of every item's entries; a consistency proof from
    `previous` (a signed checkpoint) when given."""
    signed = stuff.checkpointer.checkpoint()
    with stuff.sessions() as session:
        proofs = [
            ledger.inclusion(session, seq, signed.size)
            for seqs in stuff.seqs.values()
            for seq in seqs
        ]
        consistency = None
        if previous is not None:
            old_size = int(previous.split("\n")[1])
            consistency = ledger.consistency(session, old_size, signed.size)
    return CustodyRecord(
        proofs=proofs,
        checkpoint=signed.note,
        log_key=stuff.checkpointer.verifier_key(),
        previous_checkpoint=previous,
        consistency=consistency,
    )


INFO = BagInfo(
    source_organization="Archivo de Testimonios",
    external_identifier="export-7q2k",
    bagging_date=date(2026, 12, 7),
    contact_email="custodia@example.org",
)
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
