"""Build approved exports: choose the items now, stream the bag into an object, record it.

An approval only queues an export (`vault.exports`); building a bag of gigabytes inside an HTTP
request would hold the approver's connection for minutes, and a crash would leave no trace of
what was meant. Instead a builder (`ExportBuilder`, a service of `tvault serve`) claims queued
exports from the database under a lease, as the job queue does: a conditional UPDATE takes one,
a build killed mid-way leaves its export `building` with a lease that runs out, and another
builder (or the same one after a restart) builds it again from the start. The object is written
through `ObjectStore.writer` under a fresh name and committed only once whole; the row says
`ready` only after, so a half-written bag is never offered, and one whose row never committed is
removed by the sweep (`vault.exports.sweep_exports`).

What goes in is chosen when the bag is built (`vault.exports.select_items`): consent as it
stands then, identities hidden where the policy says. Each item's plaintext is decrypted as it
streams into the bag's age encryption to the commission's recipients; nothing readable reaches
a disk (`vault.export_bag.write_bag`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Generator, Iterator, Sequence
from datetime import timedelta
from typing import Any, BinaryIO, cast

from sqlalchemy import and_, or_, select, update

import keys
from policies import Resource, actions, decide, kinds
from vault import exports, ledger, recipients
from vault.consent import item_identity
from vault.db import Item
from vault.db.export_tables import Export
from vault.db.signature_tables import ItemSignature
from vault.errors import VaultError
from vault.export_bag import BagError, BagInfo, BagItem, CustodyRecord, write_bag
from vault.extraction import read_text
from vault.identity import REDACTED, redacted_rendition
from vault.ids import new_id
from vault.ledger import checkpoints
from vault.ledger.tables import LedgerRow
from vault.parts import Vault
from vault.sealing import open_json
from vault.search_redaction import identity_words, redact

log = logging.getLogger(__name__)

BUILDER = "vault (export builder)"  # the ledger actor of build steps: no credential does them
MAX_ATTEMPTS = 3
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}")
_ID_BATCH = 500


class LeaseLost(Exception):
    """Another builder holds this export now (the lease ran out): stop, keep nothing."""


def claim(vault: Vault, owner: str) -> str | None:
    """Take the oldest queued export (or one whose builder's lease ran out); return its id."""
    now = vault.clock()
    takeable = or_(
        Export.state == exports.QUEUED,
        and_(Export.state == exports.BUILDING, Export.lease_until < now),
    )
    with vault.sessions.begin() as session:
        candidate = session.scalar(
            select(Export.id).where(takeable).order_by(Export.requested_at, Export.id).limit(1)
        )
        if candidate is None:
            return None
        # Conditional: of two builders racing for it, one UPDATE matches (row lock on
        # PostgreSQL, the write lock on SQLite).
        taken = session.execute(
            update(Export)
            .where(Export.id == candidate, takeable)
            .values(
                state=exports.BUILDING,
                lease_owner=owner,
                lease_until=now + timedelta(seconds=vault.settings.export_lease_seconds),
                attempts=Export.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return candidate if getattr(taken, "rowcount", 0) == 1 else None


def build_pending(vault: Vault, owner: str | None = None) -> int:
    """Build every export waiting to be built; return how many were taken."""
    owner = owner or f"{os.getpid()}-{new_id()[:8]}"
    done = 0
    while (export_id := claim(vault, owner)) is not None:
        build(vault, export_id, owner)
        done += 1
    return done


def build(vault: Vault, export_id: str, owner: str) -> None:
    """Build the claimed export `export_id`; leave it `ready`, `failed`, `revoked`, or queued
    again for another attempt. Never raises for a fault of the export itself."""
    try:
        _build(vault, export_id, owner)
    except LeaseLost:
        log.warning("export build lost its lease; another builder has it")
    except (BagError, VaultError) as exc:
        # A fault that building again would meet again: say which, in words naming ids only.
        detail = exc.detail if isinstance(exc, VaultError) else str(exc)
        _end(vault, export_id, owner, exports.FAILED, f"the bag could not be built: {detail}")
    except Exception as exc:
        # The store or the database failed: try again later, up to MAX_ATTEMPTS in all. The
        # type only: a message may quote what promise 1 keeps out of logs.
        log.error("export build failed: %s", type(exc).__name__)
        _retry(vault, export_id, owner, type(exc).__name__)


def _build(vault: Vault, export_id: str, owner: str) -> None:
    with vault.sessions() as session:
        row = session.get(Export, export_id)
        assert row is not None
        commission = exports.commission_principal(session, row.commission)
    case = Resource(kind=kinds.CASE, case_id=row.case_id)
    if not decide(commission, actions.EXPORT_REQUEST, case):
        reason = f"the grant of {row.commission} on case {row.case_id} was revoked"
        _end(vault, export_id, owner, exports.REVOKED, reason)
        return
    sealed_to = recipients.recipients_of(vault, row.commission)
    if not sealed_to:
        _end(vault, export_id, owner, exports.FAILED, f"{row.commission} has no recipient keys")
        return
    words = exports.open_request(vault, row)
    selection = exports.select_items(
        vault,
        commission,
        row.case_id,
        kinds_=row.kinds,
        date_from=row.date_from,
        date_to=row.date_to,
        query=words.get("query"),
    )
    if not selection.chosen:
        reason = (
            f"no item of case {row.case_id} may go to {row.commission} now "
            "(consent including truth_commission); no empty bag is made"
        )
        _end(vault, export_id, owner, exports.FAILED, reason)
        return
    checkpointer = vault.checkpointer
    signed = checkpointer.checkpoint()  # one checkpoint every proof of this bag is against
    ids = [chosen.item.id for chosen in selection.chosen]
    custody, seqs = _custody(vault, row, ids, signed, checkpointer.verifier_key())
    now = vault.clock()
    info = BagInfo(
        source_organization=checkpointer.origin,
        external_identifier=f"tvault-export-{export_id}",
        bagging_date=now.date(),
        description=f"Export {export_id} of case {row.case_id} to {row.commission}",
    )
    name = f"{exports.PREFIX}{export_id}-{new_id()}"
    items = _items(vault, selection.chosen, seqs)

    def renew(_done: int) -> None:
        _renew(vault, export_id, owner)

    with vault.store.writer(name) as writer:
        hashing = _Hashing(writer)
        summary = write_bag(
            cast(BinaryIO, hashing), sealed_to, items, custody, info, progress=renew, now=now
        )
        writer.commit()
    try:
        _ready(vault, row, owner, name, summary.sealed_size, hashing.hexdigest(), signed, ids)
        extra = {
            "payload_bytes": summary.payload_bytes,
            "custody_entries": summary.custody_entries,
            "bag_sha256": summary.bag_sha256,
            "redacted": sum(1 for chosen in selection.chosen if chosen.redact),
            "previous_checkpoint": custody.previous_checkpoint is not None,
        }
        with vault.sessions.begin() as session:
            session.execute(update(Export).where(Export.id == export_id).values(summary=extra))
    except BaseException:
        with contextlib.suppress(Exception):
            vault.store.delete(name)
        raise


class _Hashing:
    """A writer that hashes what passes (the SHA-256 of the age file, for `Repr-Digest`)."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self._hash.update(data)
        written: int = self._target.write(data)
        return written

    def flush(self) -> None:
        return None

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _custody(
    vault: Vault,
    row: Export,
    ids: Sequence[str],
    signed: checkpoints.SignedCheckpoint,
    log_key: str,
) -> tuple[CustodyRecord, dict[str, list[int]]]:
    """The ledger entries of `ids` under `signed`, with proofs; and a consistency proof from
    this commission's previous export (the newest it downloaded) when there is one."""
    with vault.sessions() as session:
        found = sorted(
            (int(seq), str(item_id))
            for start in range(0, len(ids), _ID_BATCH)  # bound the query's parameters
            for seq, item_id in session.execute(
                select(LedgerRow.seq, LedgerRow.item_id).where(
                    LedgerRow.item_id.in_(list(ids[start : start + _ID_BATCH])),
                    LedgerRow.seq < signed.size,
                )
            )
        )
        seqs: dict[str, list[int]] = {}
        for seq, item_id in found:
            seqs.setdefault(item_id, []).append(seq)
        # Every entry about an exported item (its ingestion first: verify-export binds each
        # file's digest to it), each proven against the one checkpoint.
        proofs = list(ledger.inclusions(session, [seq for seq, _ in found], signed.size))
        earlier = session.scalar(
            select(Export.checkpoint_size)
            .where(
                Export.commission == row.commission,
                Export.id != row.id,
                Export.downloads > 0,
                Export.checkpoint_size.is_not(None),
                Export.checkpoint_size <= signed.size,
            )
            .order_by(Export.built_at.desc())
            .limit(1)
        )
        previous = consistency = None
        if earlier is not None:
            consistency = ledger.consistency(session, int(earlier), signed.size)
            previous = consistency.old_checkpoint
    record = CustodyRecord(
        proofs=proofs,
        checkpoint=signed.note,
        log_key=log_key,
        previous_checkpoint=previous,
        consistency=consistency,
    )
    return record, seqs


def _items(
    vault: Vault, chosen: Sequence[exports.Chosen], seqs: dict[str, list[int]]
) -> Iterator[BagItem]:
    """Yield one `BagItem` per chosen item, opening its sealed parts only when its turn comes."""
    for one in chosen:
        yield _item(vault, one, seqs.get(one.item.id, []))


def _item(vault: Vault, chosen: exports.Chosen, seqs: list[int]) -> BagItem:
    item = chosen.item
    with vault.sessions() as session:
        identity = item_identity(vault, session, item.id)
        meta: dict[str, Any] = open_json(item.sealed_meta, identity)
        fields = exports.identity_fields(vault, session, item.id, identity)
        signature = session.scalar(
            select(ItemSignature).where(
                ItemSignature.item_id == item.id, ItemSignature.role == "depositor"
            )
        )
    text = read_text(vault, item.id)
    filename = str(meta.get("filename") or "")
    title = meta.get("title")
    shown_identity = {
        name: "; ".join(value) if isinstance(value, list) else str(value)
        for name, value in sorted(fields.items())
    }
    metadata: dict[str, Any] = {
        "case_id": item.case_id,
        "title": title if isinstance(title, str) else None,
        "language": item.language,
        "created_at": item.created_at.isoformat().replace("+00:00", "Z"),
        "deposited_by": item.depositor,
        "consent": sorted(item.consent),
        "tags": sorted(item.tags),
        "custody_entries": seqs,
    }
    if fields:
        metadata["identity"] = shown_identity
    statement = None
    if chosen.redact:
        # The policy hides the survivor's identity: the depositor's redacted rendition instead
        # of the original, identity fields and title blanked, their words blanked in the text.
        # The signed statement names the original's file name and digest: it stays out.
        rendition, _chunks = redacted_rendition(vault, item.id)
        _chunks.close()  # type: ignore[attr-defined]
        size, sha256 = rendition.size, rendition.sha256
        suffix = os.path.splitext(filename)[1]
        filename = "redacted" + (suffix if _EXTENSION.fullmatch(suffix) else "")
        metadata["title"] = REDACTED if title else None
        if fields:
            metadata["identity"] = {name: REDACTED for name in shown_identity}
        metadata["redacted_fields"] = sorted({*fields, "title", "filename"})
        if text is not None:
            text = redact(text, identity_words(fields), REDACTED)

        def original() -> contextlib.AbstractContextManager[Iterator[bytes]]:
            chunks = cast(Generator[bytes, None, None], redacted_rendition(vault, item.id)[1])
            return contextlib.closing(chunks)

    else:
        size, sha256 = item.size, item.sha256
        if filename:
            # As the depositor gave it: the bag's file bears a portable form of it.
            metadata["filename"] = filename
        if signature is not None and signature.sealed_statement:
            statement = keys.unseal_bytes(bytes(signature.sealed_statement), identity)

        def original() -> contextlib.AbstractContextManager[Iterator[bytes]]:
            return contextlib.closing(_plaintext(vault, item))

    encoded = text.encode("utf-8") if text is not None else None
    return BagItem(
        item_id=item.id,
        kind=item.kind,
        filename=filename or item.kind,
        size=size,
        sha256=sha256,
        open_original=original,
        metadata=metadata,
        open_text=(lambda: contextlib.nullcontext([encoded])) if encoded is not None else None,
        text_size=len(encoded) if encoded is not None else None,
        redacted=chosen.redact,
        statement=statement,
        signature=signature.signature if statement is not None and signature else None,
        public_key=signature.public_key if statement is not None and signature else None,
    )


def _plaintext(vault: Vault, item: Item) -> Generator[bytes, None, None]:
    with vault.sessions() as session:
        identity = item_identity(vault, session, item.id)  # Conflict once shredded
    with vault.store.open(item.object_name) as source:
        yield from keys.open_stream(source, identity)


def _renew(vault: Vault, export_id: str, owner: str) -> None:
    until = vault.clock() + timedelta(seconds=vault.settings.export_lease_seconds)
    with vault.sessions.begin() as session:
        kept = session.execute(
            update(Export)
            .where(
                Export.id == export_id,
                Export.state == exports.BUILDING,
                Export.lease_owner == owner,
            )
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        if getattr(kept, "rowcount", 0) != 1:
            raise LeaseLost(export_id)


def _ready(
    vault: Vault,
    row: Export,
    owner: str,
    name: str,
    size: int,
    sha256: str,
    signed: checkpoints.SignedCheckpoint,
    ids: list[str],
) -> None:
    """Record the built export, and one `export` entry per item that went in, in one
    transaction; raise `LeaseLost` if another builder took it meanwhile."""
    now = vault.clock()
    with vault.sessions.begin() as session:
        done = session.execute(
            update(Export)
            .where(
                Export.id == row.id, Export.state == exports.BUILDING, Export.lease_owner == owner
            )
            .values(
                state=exports.READY,
                object_name=name,
                size=size,
                sha256=sha256,
                items=ids,
                checkpoint_size=signed.size,
                built_at=now,
                expires_at=now + exports.ttl(vault),
                lease_owner=None,
                lease_until=None,
                reason=None,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            raise LeaseLost(row.id)
        ledger.append(
            session,
            actor=BUILDER,
            action=ledger.actions.EXPORT,
            case_id=row.case_id,
            details={
                "export": row.id,
                "step": "built",
                "commission": row.commission,
                "items": len(ids),
                "bytes": size,
                "sha256": sha256,
                "checkpoint": signed.size,
            },
            now=now,
        )
        for item_id in ids:
            ledger.append(
                session,
                actor=BUILDER,
                action=ledger.actions.EXPORT,
                item_id=item_id,
                case_id=row.case_id,
                details={"export": row.id, "step": "packed", "commission": row.commission},
                now=now,
            )


def _end(vault: Vault, export_id: str, owner: str, state: str, reason: str) -> None:
    with vault.sessions.begin() as session:
        row = session.get(Export, export_id)
        assert row is not None
        done = session.execute(
            update(Export)
            .where(
                Export.id == export_id,
                Export.state == exports.BUILDING,
                Export.lease_owner == owner,
            )
            .values(state=state, reason=reason, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            return
        ledger.append(
            session,
            actor=BUILDER,
            action=ledger.actions.EXPORT,
            case_id=row.case_id,
            details={"export": export_id, "step": state, "reason": reason},
        )


def _retry(vault: Vault, export_id: str, owner: str, error: str) -> None:
    with vault.sessions() as session:
        row = session.get(Export, export_id)
    if row is None:
        return
    if row.attempts >= MAX_ATTEMPTS:
        _end(vault, export_id, owner, exports.FAILED, f"the build failed {row.attempts} times")
        return
    with vault.sessions.begin() as session:
        session.execute(
            update(Export)
            .where(Export.id == export_id, Export.lease_owner == owner)
            .values(
                state=exports.QUEUED,
                lease_owner=None,
                # Back off: the store or database that failed may need a moment.
                lease_until=vault.clock() + timedelta(seconds=30),
                reason=f"attempt {row.attempts} failed ({error}); it will be tried again",
            )
            .execution_options(synchronize_session=False)
        )


class ExportBuilder:
    """Build approved exports in a thread beside the API (a `vault.parts.Service`): every
    `TVAULT_EXPORT_POLL_SECONDS`, and at once when an approval wakes it (`wake_exports`)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._owner = f"{os.getpid()}-{new_id()[:8]}"
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None

    def wake_exports(self) -> None:
        """Look for queued exports now (an approval just queued one)."""
        self._woken.set()

    def start(self) -> None:
        """Start the builder thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tvault-exports", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        interval = self._vault.settings.export_poll_seconds
        while not self._stopping.is_set():
            try:
                build_pending(self._vault, self._owner)
            except Exception as exc:
                log.error("export builder failed: %s", type(exc).__name__)
            self._woken.wait(interval)
            self._woken.clear()

    def stop(self) -> None:
        """Stop after the build in progress (a killed one is redone after its lease)."""
        self._stopping.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
