"""The `extract` stage: decrypt the original, extract its text, seal the text as its own object.

DESIGN.md "Extraction" and promise 1: the original is decrypted only into a private 0600 file
in a 0700 directory on a file system in memory (`TVAULT_SCRATCH_DIR`, a tmpfs or ramfs the stage
checks when it starts, `ingest.memory_dir`), removed whatever happens; an original larger than
`TVAULT_EXTRACT_MEMORY_LIMIT` fails extraction with that reason instead of reaching a disk;
the text goes from the extractor straight into an age `keys.Sealer` and the object store, never
to a file in the clear. Then ONE transaction records the `item_texts` link,
the `metadata extraction` ledger entry, the item's `index` job, and completes the job (fenced on
the lease, so the result commits once) for every document of the batch a run takes
(`ExtractStage.BATCH`).

Idempotent: the text object's name is derived from the item, the stage and the attempt
(`texts/<item>-extract-<n>`), so an attempt whose lease was taken over never overwrites the
object another attempt committed; an attempt that finds the link already recorded only
completes its job; objects of earlier attempts that never committed are removed by the
successful one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Final, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

import keys
from ingest import (
    Extraction,
    ExtractionError,
    Extractor,
    FailureKind,
    Limits,
    memory_dir,
    plaintext_file,
)
from ingest.scratch import PRIVATE_PREFIX, sweep_dead
from vault import item_keys, jobs, ledger, ocr, storage_faults
from vault.db import Item, ItemKey
from vault.db.jobs_tables import ItemText, Job
from vault.parts import Vault
from vault.sealing import open_json, seal_json
from vault.settings import Settings
from vault.signatures import CiphertextDigest
from vault.storage import ObjectNotFound, StorageError
from vault.worker import StageFailed, fail_job, leases_kept, overrun

log = logging.getLogger(__name__)

ACTOR: Final = "tvault-worker"
PREFIX: Final = "texts/"
# Kinds not extracted: audio and video give no text (speech recognition is off; scans and photos
# of documents are deposited as documents, and get OCR), and
# copying gigabytes of plaintext to a temporary file for nothing is a risk without a gain.
SKIPPED_KINDS: Final = frozenset({"media"})
# Failures that another attempt may not repeat; the others (a malformed file) would.
RETRYABLE: Final = frozenset(
    {FailureKind.TIMEOUT, FailureKind.CRASHED, FailureKind.UNAVAILABLE, FailureKind.MEMORY}
)
_INSERT_TEXT = cast(Table, ItemText.__table__).insert()
# A run takes no more documents into its batch after this long, so a slow document holds up
# the results of the few before it only (other workers take the jobs behind it).
HOLD_SECONDS: Final = 1.0
TEXT_SLICE: Final = 256 * 1024  # characters encoded and sealed at a time
DIR_PREFIX: Final = PRIVATE_PREFIX


def text_object_name(item_id: str, attempt: int) -> str:
    """Return the object name of the text extracted from `item_id` by attempt `attempt`."""
    return f"{PREFIX}{item_id}-extract-{attempt}"


def being_extracted(session: Session, names: list[str]) -> set[str]:
    """Return those of text object `names` whose item's extract job is running: an attempt
    seals every text of its batch before the one transaction that records them, so an object
    no row names yet may be about to be named (the sweep leaves such objects alone; a later
    attempt removes an abandoned one, `ExtractStage._remove_earlier_attempts`)."""
    items = {name: name[len(PREFIX) :].rsplit("-extract-", 1)[0] for name in names}
    running = set(
        session.scalars(
            select(Job.item_id).where(
                Job.kind == jobs.EXTRACT,
                Job.state == jobs.RUNNING,
                Job.item_id.in_(set(items.values())),
            )
        )
    )
    return {name for name, item_id in items.items() if item_id in running}


def limits_of(settings: Settings) -> Limits:
    """Return the extraction limits the settings ask for."""
    return Limits(
        timeout_s=settings.extract_timeout_s,
        max_text_chars=settings.extract_max_text_chars,
        max_memory_bytes=settings.extract_max_memory_mb * 1024**2,
        max_pages=settings.extract_max_pages,
        max_pixels=settings.extract_max_pixels,
    )


def sweep_private_dirs(base: Path) -> int:
    """Remove the private directories of dead workers under `base`; return how many
    (`ingest.scratch.sweep_dead`; every process that opens the vault calls it too)."""
    return sweep_dead(base)


class _PrivateDirs:
    """This worker's 0700 directory for plaintext copies, in the checked in-memory scratch."""

    def __init__(self, settings: Settings) -> None:
        # Raises ScratchError: a worker whose scratch is on a disk must not start.
        self._base = memory_dir(settings.scratch_dir)
        self._made: Path | None = None
        self._lock = threading.Lock()
        sweep_private_dirs(self._base)

    def get(self) -> Path:
        with self._lock:
            if self._made is None:
                prefix = f"{DIR_PREFIX}{os.getpid()}-"
                self._made = Path(tempfile.mkdtemp(prefix=prefix, dir=self._base))  # mode 0700
            return self._made

    def remove(self) -> None:
        with self._lock:
            if self._made is not None:
                shutil.rmtree(self._made, ignore_errors=True)
            self._made = None


def _slices(text: str) -> Iterator[bytes]:
    for start in range(0, len(text), TEXT_SLICE):
        yield text[start : start + TEXT_SLICE].encode("utf-8")


@dataclass(frozen=True)
class _Sealed:
    """A text this attempt sealed: its object, what was extracted, and whom it is sealed to."""

    name: str
    extraction: Extraction
    recipient: str
    # SHA-256 of the text (UTF-8) and of its sealed object, for `tvault verify` (in the ledger).
    text_sha256: str
    object_sha256: str


@dataclass(frozen=True)
class _Text:
    """A document of a batch that waits to be recorded."""

    claim: jobs.Claim
    item: Item
    sealed: _Sealed | None  # None: an earlier attempt recorded the text; only complete the job

    @property
    def name(self) -> str | None:
        """The text object this attempt wrote, if any."""
        return self.sealed.name if self.sealed is not None else None


class ExtractStage:
    """The `extract` stage of a worker, around one extractor shared by its threads.

    A run takes its job and up to `BATCH - 1` more due `extract` jobs, each claimed (under the
    same owner and lease) only when the run starts it and while the run is younger than
    `HOLD_SECONDS`, so a crash charges an attempt to the jobs it interrupted and to no other;
    it extracts and seals each, then records every result in ONE transaction:
    the database's work and its commit (an fsync) are shared by the batch instead of paid per
    document, which is what held a worker to ~100 documents/s (bench/RESULTS.md). A job that
    fails fails alone; a job whose lease passed to another worker is left to that worker.
    """

    BATCH: Final = 8

    def __init__(
        self, vault: Vault, extractor: Extractor, tool: tuple[str, str], limits: Limits
    ) -> None:
        self._vault = vault
        self._extractor = extractor
        self._tool = tool
        self._limits = limits
        self._dirs = _PrivateDirs(vault.settings)
        self._lease = timedelta(seconds=vault.settings.jobs_lease_seconds)

    def close(self) -> None:
        """Stop the extractor's parser processes and remove this worker's private directories."""
        self._extractor.close()
        self._dirs.remove()

    def run(self, claim: jobs.Claim) -> bool:
        """Extract, seal and record the text of `claim.item_id` and of the batch's other items,
        completing each job (True: `claim` is completed when this returns).

        Raises `StageFailed` (with the extractor's reason) when the text of `claim`'s item cannot
        be had, `jobs.LeaseLost` when another worker took `claim` over meanwhile; the batch's
        other jobs fail or are left alone in the same cases, without raising.
        """
        claims = [claim]
        # The worker's heartbeat renews `claim` only; the batch's others, as they join, here.
        with leases_kept(self._vault, claims):
            return self._run(claim, claims)

    def _run(self, claim: jobs.Claim, claims: list[jobs.Claim]) -> bool:
        rows = self._rows([claim.item_id])
        texts: list[_Text] = []
        failures: list[tuple[jobs.Claim, BaseException]] = []
        started = time.monotonic()
        while True:
            one = claims[-1]
            try:
                texts.append(self._prepare(one, rows.get(one.item_id)))
            except Exception as exc:
                failures.append((one, exc))
                if storage_faults.store_fault(exc) is not None:
                    break  # the store takes no text now: claim no more (the worker waits)
            if len(claims) >= self.BATCH or time.monotonic() - started > HOLD_SECONDS:
                # A slow document in the batch: the jobs behind it stay queued for other
                # workers (or threads) to take now, not after it.
                break
            following = self._next(claim)
            if following is None:
                break
            claims.append(following)
            rows.update(self._rows([following.item_id]))
        try:
            recorded = self._record_all(texts)
        except Exception as exc:
            # The database failed: let another attempt have the others at once, each failed
            # for its own reason where it had one.
            own_failures = {one.id: failure for one, failure in failures}
            for one in claims[1:]:
                fail_job(self._vault, one, own_failures.get(one.id, exc))
            raise
        for text in texts:
            if text.name is not None and text.claim.id in recorded:
                self._remove_earlier_attempts(text.item.id, text.claim.attempt)
            if text.claim is not claim and text.claim.id in recorded:
                # The worker logs the first job; the others of the batch are logged here alike.
                log.info(
                    "job %s (%s, item %s) done by %s in %.2f s (batch of %d)",
                    text.claim.id,
                    text.claim.kind,
                    text.claim.item_id,
                    text.claim.owner,
                    time.monotonic() - started,
                    len(claims),
                )
        if claim.id not in recorded and not any(one is claim for one, _ in failures):
            raise jobs.LeaseLost(f"job {claim.id} is no longer held by {claim.owner}")
        own: BaseException | None = None
        for one, failure in failures:
            if one is claim:
                own = failure  # raised last, for the worker to record, once the others are
            else:
                fail_job(self._vault, one, failure)
        if own is not None:
            raise own
        return True

    def _next(self, claim: jobs.Claim) -> jobs.Claim | None:
        """Claim the next due extract job under `claim`'s owner and lease, to start at once;
        None when there is none.

        One at a time, as the batch reaches it: a claim charges the job an attempt, so a worker
        holds only the jobs it has started (a crash then charges only the jobs it interrupted,
        docs/jobs.md). A job re-claimed too often is failed unrun, as the worker fails a first
        job, and the next one is taken instead.
        """
        vault = self._vault
        while True:
            more = jobs.claim_many(
                vault.sessions,
                claim.owner,
                {jobs.EXTRACT},
                now=vault.clock(),
                lease=self._lease,
                limit=1,
            )
            if not more:
                return None
            reason = overrun(more[0])
            if reason is None:
                return more[0]
            fail_job(self._vault, more[0], StageFailed(reason, retry=False))

    def _rows(self, item_ids: list[str]) -> dict[str, tuple[Item, bytes | None, bool]]:
        """Return (item, wrapped key or None, text already recorded) per item, in one query."""
        query = (
            select(Item, ItemKey.wrapped, ItemText.item_id)
            .outerjoin(ItemKey, ItemKey.item_id == Item.id)
            .outerjoin(ItemText, ItemText.item_id == Item.id)
            .where(Item.id.in_(item_ids))
        )
        with self._vault.sessions() as session:
            return {
                item.id: (item, wrapped, linked is not None)
                for item, wrapped, linked in session.execute(query)
            }

    def _prepare(self, claim: jobs.Claim, row: tuple[Item, bytes | None, bool] | None) -> _Text:
        """Extract and seal the text of `claim`'s item. Raises `StageFailed`."""
        if row is None:
            raise StageFailed("the item no longer exists", retry=False)
        item, wrapped, done = row
        if done:
            # Recorded by an earlier attempt (a job queued again by hand): nothing to redo.
            return _Text(claim, item, None)
        if wrapped is None:
            raise StageFailed("the item key was shredded; there is nothing to extract", retry=False)
        identity = item_keys.open_identity(self._vault.keyring, item.id, wrapped)
        extraction = self._extract(item, identity)
        name = text_object_name(item.id, claim.attempt)
        recipient = keys.recipient_of(identity)
        text_sha256, object_sha256 = self._seal_text(name, extraction.text, recipient)
        return _Text(claim, item, _Sealed(name, extraction, recipient, text_sha256, object_sha256))

    def _record_all(self, texts: list[_Text]) -> set[str]:
        """Record `texts` and complete their jobs; return the ids of the jobs completed.

        One transaction for the batch; if a job's lease was lost meanwhile (that transaction
        then rolls back whole), each is recorded in a transaction of its own, so the others
        still commit. A text whose record did not commit has its object deleted.
        """
        recorded: set[str] = set()
        try:
            if texts:
                with self._vault.sessions.begin() as session:
                    self._record(session, texts)
            recorded = {text.claim.id for text in texts}
        except jobs.LeaseLost:
            for text in texts:
                try:
                    with self._vault.sessions.begin() as session:
                        self._record(session, [text])
                    recorded.add(text.claim.id)
                except jobs.LeaseLost:
                    continue
        finally:
            for text in texts:
                if text.name is not None and text.claim.id not in recorded:
                    # Nothing refers to this attempt's object (the worker now holding the job
                    # writes under its own attempt number, so this deletes nothing of theirs).
                    self._delete(text.name)
        return recorded

    def _extract(self, item: Item, identity: str) -> Extraction:
        if item.kind in SKIPPED_KINDS:
            return Extraction(text="", mime_type="application/octet-stream")
        limit = self._vault.settings.extract_memory_limit
        if item.size > limit:
            # Decided before decrypting a byte: a bigger copy would not fit the memory set
            # aside for it, and spilling it to a disk is what promise 1 forbids.
            reason = (
                f"the original is {item.size} bytes, more than the {limit} bytes extraction "
                "may decrypt in memory (TVAULT_EXTRACT_MEMORY_LIMIT); it is never decrypted "
                "to a disk"
            )
            raise StageFailed(reason, retry=False)
        directory = self._dirs.get()
        try:
            with self._vault.store.open(item.object_name) as source:
                chunks = keys.open_stream(source, identity)
                with plaintext_file(chunks, directory=directory) as path:
                    return self._extractor.extract(path, self._limits, language=item.language)
        except ExtractionError as exc:
            raise StageFailed(exc.reason, retry=exc.kind in RETRYABLE) from None
        except keys.UnsealError:
            reason = "the sealed original does not open: run tvault verify"
            raise StageFailed(reason, retry=False) from None
        except ObjectNotFound:
            reason = "the original object is missing: run tvault verify"
            raise StageFailed(reason, retry=False) from None

    def _seal_text(self, name: str, text: str, recipient: str) -> tuple[str, str]:
        """Seal `text` as object `name`; return the SHA-256 of the text and of the object."""
        store = self._vault.store
        if store.exists(name):
            # Left by this same attempt number in a process that died before the commit.
            self._delete(name)
        plain = hashlib.sha256()
        with store.writer(name) as writer:
            sealed = CiphertextDigest(cast(BinaryIO, writer))
            sealer = keys.Sealer(cast(BinaryIO, sealed), [recipient])
            for piece in _slices(text):
                plain.update(piece)
                sealer.write(piece)
            sealer.close()
            writer.commit()
        return plain.hexdigest(), sealed.hexdigest()

    def _record(self, session: Session, texts: list[_Text]) -> None:
        """Add the links of `texts`, their ledger entries and their items' `index` jobs to
        `session`'s transaction, and complete their jobs there (one statement of each kind
        for the lot, but the ledger's one entry each). Raises `jobs.LeaseLost` if any of the
        jobs is no longer held."""
        vault = self._vault
        now = vault.clock()
        new = [(text, text.sealed) for text in texts if text.sealed is not None]
        if new:
            session.execute(
                _INSERT_TEXT,
                [
                    {
                        "item_id": text.item.id,
                        "object_name": sealed.name,
                        "mime_type": sealed.extraction.mime_type[:255],
                        "language": sealed.extraction.language,
                        "chars": len(sealed.extraction.text),
                        "sealed_meta": seal_json(
                            dict(sealed.extraction.metadata), sealed.recipient
                        ),
                        "tool": self._tool[0][:64],
                        "extracted_at": now,
                    }
                    for text, sealed in new
                ],
            )
        for text, sealed in new:
            extraction = sealed.extraction
            ledger.append(
                session,
                actor=ACTOR,
                action=ledger.actions.METADATA_EXTRACTION,
                item_id=text.item.id,
                case_id=text.item.case_id,
                details={
                    "language": extraction.language,
                    "chars": len(extraction.text),
                    "mime_type": extraction.mime_type,
                    "job": text.claim.id,
                    "attempt": text.claim.attempt,
                    # What `tvault verify` checks the text object against (vault.texts).
                    "text_sha256": sealed.text_sha256,
                    "object_sha256": sealed.object_sha256,
                    **ocr.details_of(extraction),
                },
                tool=self._tool,
                now=now,
            )
        jobs.enqueue_many(
            session,
            [text.item.id for text in texts],
            jobs.INDEX,
            now=now,
            max_attempts=vault.settings.jobs_max_attempts,
        )
        jobs.complete_many(session, [text.claim for text in texts], now=now)

    def _delete(self, name: str) -> None:
        with contextlib.suppress(StorageError):  # already gone, or never written
            self._vault.store.delete(name)

    def _remove_earlier_attempts(self, item_id: str, attempt: int) -> None:
        # By name, not by listing: a listing walks the whole store (every item's objects).
        for earlier in range(1, attempt):
            name = text_object_name(item_id, earlier)
            if self._vault.store.exists(name):
                self._delete(name)


def detected_languages(session: Session, item_ids: list[str]) -> dict[str, str | None]:
    """Return the language extraction detected for each of `item_ids` that has a text (ISO
    639-1, or None when it could not tell); items not extracted (yet) are left out."""
    if not item_ids:
        return {}
    rows = session.execute(
        select(ItemText.item_id, ItemText.language).where(ItemText.item_id.in_(item_ids))
    )
    return {item_id: language for item_id, language in rows}


def read_text(vault: Vault, item_id: str) -> str | None:
    """Return the extracted text of `item_id`, or None if it has none (yet, or shredded).

    For the `index` stage and for snippets made after the access check; the text is only in
    memory. Raises `keys.UnsealError` if the sealed text object was altered.
    """
    with vault.sessions() as session:
        link = session.get(ItemText, item_id)
        key = session.get(ItemKey, item_id)
    if link is None or key is None:
        return None
    identity = item_keys.open_identity(vault.keyring, item_id, key.wrapped)
    with vault.store.open(link.object_name) as source:
        data = b"".join(keys.open_stream(source, identity))
    return data.decode("utf-8")


def read_text_metadata(vault: Vault, item_id: str) -> dict[str, object] | None:
    """Return the extractor's metadata of `item_id` (title, author, ...), unsealed; or None."""
    with vault.sessions() as session:
        link = session.get(ItemText, item_id)
        key = session.get(ItemKey, item_id)
    if link is None or key is None:
        return None
    return open_json(link.sealed_meta, item_keys.open_identity(vault.keyring, item_id, key.wrapped))
