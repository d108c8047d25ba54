"""The `index` stage: put an item's sealed extracted text into the search index; and reindex.

The index holds keyed digests and structural metadata only (docs/search.md); the text comes
from the item's sealed extracted-text object, opened with the item's own key, so a shredded item
can never be indexed again. The engine is chosen and opened by `vault.compose` from `TVAULT_INDEX`
(`Vault.open_index`); the index key and the vocabulary's age identity are named secrets in the
keyring (`vault.compose.ensure_index_secrets`).
The vocabulary prefix and fuzzy queries expand against lives in the metadata database
(`vault.vocabulary`), shared by every process; the words a batch of jobs added are saved in the
transaction that records and completes its first job.

What goes into which field (promise 11): the words of the item's identity fields are given to
the index as `IndexDocument.identity` (`vault.search_redaction.identity_words`), so the engine
keeps them out of the field searched for principals under the redaction obligation; and an
item with identity fields and no depositor-given language has its language detected on its
text without those words, so the language facet does not depend on them either. Changing the
identity fields re-indexes the item (`after_identity_change`).

Order of commits (promise 7): the engine commits inside the database transaction that saves
the new words and records the custody entry and the job's completion, and before it commits. A
crash between the two leaves an indexed item whose state still says `extracted` and whose new
words are not saved; the job runs again and, being idempotent, replaces the same document and
saves its words (a new process has not read them, so they are new to it).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

import keys
from ingest.language import detect_language
from search import Index, IndexDocument, IndexFormatError
from vault import item_keys, jobs, ledger, vocabulary
from vault.db import Item, ItemKey
from vault.db.access_tables import ItemIdentity
from vault.db.jobs_tables import ItemText
from vault.errors import NotFound
from vault.parts import Vault
from vault.sealing import open_json, read_sealed_text
from vault.search_redaction import identity_words, redact
from vault.storage import ObjectStore
from vault.worker import fail_job, leases_kept

REINDEX_BATCH = 500
INDEXER = "tvault-indexer"  # the ledger actor of background indexing
REINDEXER = "tvault-reindex"

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)

_open_lock = threading.Lock()


def index_of(vault: Vault, *, rebuild: bool = False) -> Index:
    """Return the vault's index, opened on first use with the opener the composition root gave
    the vault (`Vault.open_index`), so admin commands that never search do not open it. Raises
    as `vault.compose.make_index` does; with `rebuild`, an index of an older format is opened
    empty instead of refused."""
    with _open_lock:
        if vault.index is None:
            try:
                vault.index = vault.open_index()
            except IndexFormatError:
                if not rebuild:
                    raise
                vault.index = vault.open_index(rebuild=True)
        return vault.index


def item_identity(vault: Vault, session: Session, item_id: str) -> str | None:
    """Return the item's age identity, or None once it is shredded."""
    key = session.get(ItemKey, item_id)
    return None if key is None else item_keys.open_identity(vault.keyring, item_id, key.wrapped)


@dataclass(frozen=True)
class Text:
    """An item's extracted text, decrypted, the language it was detected in, and the words of
    the item's identity fields (`vault.search_redaction.identity_words`)."""

    text: str = field(repr=False)  # testimony: never in a traceback
    language: str | None
    identity: frozenset[str] = field(default=frozenset(), repr=False)


def extracted_text(vault: Vault, session: Session, item_id: str, identity: str) -> Text | None:
    """Return the item's extracted text (`vault.extraction` sealed it to the item's identity),
    or None if it has none yet.

    Raises `keys.UnsealError` if the object does not open with `identity` (tampering), and
    `vault.storage.ObjectNotFound` if the object is missing.
    """
    row = session.get(ItemText, item_id)
    return None if row is None else open_text(vault, row, identity)


def open_text(vault: Vault, row: ItemText, identity: str) -> Text:
    """Return the text `row` links to, decrypted with the item's `identity`.

    Raises `keys.UnsealError` or `vault.storage.ObjectNotFound` as `extracted_text` does."""
    return Text(read_sealed_text(vault.store, row.object_name, identity), row.language)


def identity_of(sealed: bytes | None, identity: str) -> frozenset[str]:
    """Return the words of the sealed identity fields `sealed` (None: none recorded).

    Raises `keys.UnsealError` if they do not open with the item's `identity`."""
    return frozenset() if sealed is None else identity_words(open_json(sealed, identity))


def metadata_of(sealed_meta: bytes, tags: Iterable[str], identity: str) -> tuple[str, ...]:
    """Return the words of an item indexed beside its text: its title and notes (opened from its
    `sealed_meta` with the item's `identity`) and its `tags`, `_` and `-` read as spaces so a
    tag's words are found one by one. The filename is not among them: it is a name a machine
    gave, not words of the testimony.

    Raises `keys.UnsealError` if the metadata does not open with `identity`."""
    meta = open_json(sealed_meta, identity) if sealed_meta else {}
    values = [meta.get(name) for name in ("title", "notes")]
    words = " ".join(tag.replace("_", " ").replace("-", " ") for tag in sorted(tags))
    return tuple(v for v in (*values, words) if isinstance(v, str) and v.strip())


def document_of(item: Item, text: Text, metadata: tuple[str, ...] = ()) -> IndexDocument:
    """Return the index document of `item` with its extracted `text`, identity words and
    `metadata` (`metadata_of`; see `with_text`)."""
    bare = IndexDocument(
        item_id=item.id,
        case_id=item.case_id,
        kind=item.kind,
        language=item.language or text.language,
        created=item.created_at,
        tags=frozenset(item.tags),
        consent=frozenset(item.consent),
        metadata=metadata,
    )
    return with_text(bare, item.language, text)


def with_text(document: IndexDocument, given: str | None, text: Text) -> IndexDocument:
    """Return `document` with `text` and its identity words. Its language stays the one the
    depositor gave (`given`), else the detected one (it picks the stemmer and is a facet); for
    an item with identity fields it is detected again on the text without their words, so
    neither the facet nor the stemming depend on a name."""
    language = document.language
    if not given and text.identity:
        language = detect_language(redact(text.text, text.identity, " "))
    return replace(document, text=text.text, identity=text.identity, language=language)


@dataclass(frozen=True)
class Indexed:
    """What indexing did with one item: `indexed` (with its text's length), `shredded` (removed
    from the index) or `no-text` (nothing extracted yet)."""

    item_id: str
    outcome: str
    chars: int = 0


# The engine is shared by the server's threads; an index() and its commit() go together so a
# rollback after one item's failure cannot drop another thread's pending document. Reentrant:
# `_recorded` takes it again to save the words of a failed transaction.
_write_lock = threading.RLock()


def _apply(index: Index, change: Callable[[], object]) -> None:
    with _write_lock:
        try:
            change()
            index.commit()
        except BaseException:
            index.rollback()
            raise


def _prepare_item(vault: Vault, item_id: str) -> tuple[Indexed, Item, IndexDocument | None]:
    """Load `item_id` and open its text and identity fields: the document to index (None:
    shredded or no text).

    Raises `NotFound` for an unknown item, `keys.UnsealError` if its text or its identity
    fields do not open (then it is not indexed: its name could not be kept apart)."""
    with vault.sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFound(f"no item {item_id}")
        identity = item_identity(vault, session, item_id)
        text = None if identity is None else extracted_text(vault, session, item_id, identity)
        fields = session.get(ItemIdentity, item_id)
        sealed = None if fields is None else fields.sealed
    if identity is None:
        return Indexed(item_id, "shredded"), item, None
    if text is None:
        return Indexed(item_id, "no-text"), item, None
    text = replace(text, identity=identity_of(sealed, identity))
    document = document_of(item, text, metadata_of(item.sealed_meta, item.tags, identity))
    return Indexed(item_id, "indexed", len(text.text)), item, document


def _change(index: Index, done: Indexed, document: IndexDocument | None) -> None:
    if done.outcome == "shredded":
        index.delete(done.item_id)
    elif document is not None:
        index.index([document])


@contextlib.contextmanager
def _recorded(vault: Vault, index: Index) -> Iterator[Session]:
    """Open the transaction in which the index's new words are saved (`vocabulary.joined`)
    with what the caller records in it. If it fails after the engine committed, the words are
    saved on their own at once, so other processes can still expand to them."""
    try:
        with vault.sessions.begin() as session, vocabulary.joined(session):
            yield session
    except BaseException:
        with contextlib.suppress(Exception), _write_lock:
            index.commit()  # nothing pending in the engine: saves the words only
        raise


def _record(session: Session, vault: Vault, actor: str, done: Indexed, item: Item) -> None:
    ledger.append(
        session,
        actor=actor,
        action=ledger.actions.INDEXING,
        item_id=item.id,
        case_id=item.case_id,
        details={"chars": done.chars, "engine": vault.settings.index},
    )


def index_item(vault: Vault, item_id: str, *, actor: str = INDEXER) -> Indexed:
    """Put item `item_id` into the index from its sealed extracted text, commit the engine and
    record it in the custody ledger, with the item's new words, in one transaction.

    Idempotent: the document replaces any earlier one of the same item. A shredded item is
    removed from the index instead. Raises `NotFound` for an unknown item, `keys.UnsealError`
    if its text does not open, `search.SearchError` if the engine fails (its pending change is
    rolled back).
    """
    index = index_of(vault)
    done, item, document = _prepare_item(vault, item_id)
    if done.outcome == "no-text":
        return done
    with _recorded(vault, index) as session:
        _apply(index, lambda: _change(index, done, document))
        if done.outcome == "indexed":
            _record(session, vault, actor, done, item)
    return done


def refresh_item(vault: Vault, item_id: str) -> Indexed:
    """Bring the index's copy of `item_id` up to date (consent, tags), or remove it once
    shredded. Call after a consent change, so that withdrawal takes effect in the next search's
    totals and facets too (promise 5; each hit is checked against the database anyway).
    Raises as `index_item` does."""
    return index_item(vault, item_id)


def remove_item(vault: Vault, item_id: str) -> None:
    """Remove `item_id` from the index and forget the words no other item holds (after
    crypto-shredding). Raises `search.SearchError` if the engine fails."""
    index = index_of(vault)
    with _write_lock:
        try:
            index.delete(item_id)
            index.commit()
        except BaseException:
            index.rollback()
            raise
        index.prune_vocabulary()


def after_consent_change(vault: Vault, item_id: str) -> None:
    """Re-index `item_id` after its consent changed (called by `vault.consent`). Never raises:
    the change stands; until the index catches up, each hit is still checked against the
    database, and a failure is logged by type only."""
    try:
        refresh_item(vault, item_id)
    except Exception as exc:
        log.warning(
            "item %s: index not refreshed after a consent change (%s)", item_id, type(exc).__name__
        )


def after_identity_change(vault: Vault, item_id: str) -> None:
    """Re-index `item_id` after its identity fields changed (called by `vault.identity`), so
    its new identity words leave the field searched under the redaction obligation at once.
    Never raises: a failure is logged by type only, and `tvault reindex` repairs it."""
    try:
        refresh_item(vault, item_id)
    except Exception as exc:
        log.error(
            "item %s: index not refreshed after an identity change (%s); run `tvault reindex`",
            item_id,
            type(exc).__name__,
        )


def after_shredding(vault: Vault, item_id: str) -> None:
    """Remove a crypto-shredded `item_id` from the index (called by `vault.shred`). Never
    raises: a shredded item is never shown anyway (no key); `tvault reindex` also drops it."""
    try:
        remove_item(vault, item_id)
    except Exception as exc:
        log.warning(
            "item %s: not removed from the index after shredding (%s)", item_id, type(exc).__name__
        )


class IndexStage:
    """The worker's `index` stage (`vault.worker.Stage`): runs after extraction.

    An engine commit costs far more than indexing one item, so a run takes up to `BATCH` index
    jobs that are due (claimed under the same owner and lease as the first), indexes them and
    commits the engine once, inside the transaction that saves the batch's new words and
    records and completes the first job; each other job is recorded and completed in its own
    transaction. A job whose lease passed to another worker meanwhile is left to
    that worker (indexing twice is harmless).
    """

    BATCH = 50

    def __init__(self, vault: Vault, concurrency: int) -> None:
        self._vault = vault
        del concurrency  # the vault's one index is shared; writes are serialised

    def run(self, claim: jobs.Claim) -> bool:
        """Index the item of `claim` (and other due index jobs); record and complete each
        (True: `claim` is completed when this returns).

        Raises `StageFailed` (no retry) when the first item has no text or its text does not
        open; the other jobs of the batch fail on their own with the same reasons.
        """
        claims = [claim, *self._more(claim)]
        # The worker's heartbeat renews `claim` only; the batch's others are renewed here.
        with leases_kept(self._vault, claims):
            return self._run(claim, claims)

    def _run(self, claim: jobs.Claim, claims: list[jobs.Claim]) -> bool:
        from vault.worker import StageFailed

        vault = self._vault
        started = time.monotonic()
        prepared: list[tuple[jobs.Claim, Indexed, Item, IndexDocument | None]] = []
        failures: list[tuple[jobs.Claim, StageFailed]] = []
        for one in claims:
            try:
                done, item, document = _prepare_item(vault, one.item_id)
                if done.outcome == "no-text":
                    raise StageFailed("the item has no extracted text to index", retry=False)
            except keys.UnsealError:
                reason = "the extracted text or identity fields do not open with the item's key"
                failures.append((one, StageFailed(reason, retry=False)))
            except StageFailed as exc:
                failures.append((one, exc))
            except Exception as exc:
                if one is claim:
                    for other in claims[1:]:  # let other workers have them at once
                        with contextlib.suppress(jobs.LeaseLost):
                            jobs.release(vault.sessions, other, now=vault.clock())
                    raise
                # Type name only, as the worker records it: a message may quote the text.
                reason = f"internal error while preparing ({type(exc).__name__})"
                failures.append((one, StageFailed(reason, retry=True)))
            else:
                prepared.append((one, done, item, document))
        index = index_of(vault)

        def change() -> None:
            for _one, done, _item, document in prepared:
                _change(index, done, document)

        def record(session: Session, one: jobs.Claim, done: Indexed, item: Item) -> None:
            if done.outcome == "indexed":
                _record(session, vault, INDEXER, done, item)
            jobs.complete(session, one, now=vault.clock())

        # The batch's new words are saved in the transaction of its first job (`_recorded`);
        # the others record and complete in their own, so a lease lost on one leaves the rest.
        for position, (one, done, item, _document) in enumerate(prepared):
            engine_failed = False
            try:
                with _recorded(vault, index) as session:
                    if position == 0:
                        try:
                            _apply(index, change)
                        except Exception:
                            engine_failed = True
                            raise
                    record(session, one, done, item)
            except jobs.LeaseLost:
                if one is claim:
                    raise
                continue
            except Exception:
                if engine_failed:
                    for other in claims[1:]:
                        fail_job(
                            vault, other, StageFailed("the index refused the batch", retry=True)
                        )
                raise
            if one is not claim:
                # The worker logs the first job; the others of the batch are logged here alike.
                log.info(
                    "job %s (%s, item %s) done by %s in %.2f s (batch of %d)",
                    one.id,
                    one.kind,
                    one.item_id,
                    one.owner,
                    time.monotonic() - started,
                    len(claims),
                )
        for one, failure in failures:
            if one is claim:
                raise failure
            fail_job(vault, one, failure)
        return True

    def _more(self, claim: jobs.Claim) -> list[jobs.Claim]:
        vault = self._vault
        lease = timedelta(seconds=vault.settings.jobs_lease_seconds)
        return jobs.claim_many(
            vault.sessions,
            claim.owner,
            {jobs.INDEX},
            now=vault.clock(),
            lease=lease,
            limit=self.BATCH - 1,
        )

    def close(self) -> None:
        """Nothing to release: the index belongs to the vault and closes with it."""


def _batches(vault: Vault, size: int) -> Iterator[Sequence[Item]]:
    # In deposit order, as the job queue indexed them first: equal scores then keep their order
    # after a rebuild (keyset pagination on (created_at, id), no cursor held open).
    last: tuple[datetime, str] | None = None
    while True:
        query = select(Item).order_by(Item.created_at, Item.id).limit(size)
        if last is not None:
            query = query.where(tuple_(Item.created_at, Item.id) > tuple_(*last))
        with vault.sessions() as session:
            rows = session.scalars(query).all()
        if not rows:
            return
        yield rows
        last = (rows[-1].created_at, rows[-1].id)


@dataclass(frozen=True)
class _Pending:
    """An item of a reindex batch: its structural metadata and where its sealed text is."""

    document: IndexDocument  # without its text yet
    object_name: str
    identity: str = field(repr=False)
    language: str | None  # the depositor's
    fields: bytes | None = field(repr=False)  # the sealed identity fields, if recorded
    sealed_meta: bytes = field(repr=False)  # title, notes: opened where the text is


def _prepare(vault: Vault, rows: Sequence[Item]) -> tuple[int, list[_Pending]]:
    ids = [item.id for item in rows]
    with vault.sessions() as session:
        wrapped = dict(
            session.execute(
                select(ItemKey.item_id, ItemKey.wrapped).where(ItemKey.item_id.in_(ids))
            ).all()
        )
        texts = {
            t.item_id: t for t in session.scalars(select(ItemText).where(ItemText.item_id.in_(ids)))
        }
        fields = dict(
            session.execute(
                select(ItemIdentity.item_id, ItemIdentity.sealed).where(
                    ItemIdentity.item_id.in_(ids)
                )
            ).all()
        )
    pending = []
    for item in rows:
        key, row = wrapped.get(item.id), texts.get(item.id)
        if key is not None and row is not None:  # else shredded, or not extracted yet
            identity = item_keys.open_identity(vault.keyring, item.id, key)
            document = document_of(item, Text("", row.language))
            pending.append(
                _Pending(
                    document,
                    row.object_name,
                    identity,
                    item.language,
                    fields.get(item.id),
                    item.sealed_meta,
                )
            )
    return len(rows), pending


def _open_all(
    store: ObjectStore, batch: tuple[int, list[_Pending]]
) -> tuple[int, list[IndexDocument]]:
    count, pending = batch
    documents = []
    for one in pending:
        text = read_sealed_text(store, one.object_name, one.identity)
        words = identity_of(one.fields, one.identity)
        metadata = metadata_of(one.sealed_meta, one.document.tags, one.identity)
        document = replace(one.document, metadata=metadata)
        documents.append(with_text(document, one.language, Text(text, None, words)))
    return count, documents


_child_store: ObjectStore | None = None


def _child_start(
    open_store: Callable[[dict[str, object]], ObjectStore], settings: dict[str, object]
) -> None:
    global _child_store  # one store per helper process, built once
    _child_store = open_store(settings)


def _child_open(batch: tuple[int, list[_Pending]]) -> tuple[int, list[IndexDocument]]:
    assert _child_store is not None
    return _open_all(_child_store, batch)


def reindex(
    vault: Vault,
    *,
    actor: str = REINDEXER,
    progress: Progress | None = None,
    batch: int = REINDEX_BATCH,
    workers: int = 0,
) -> int:
    """Rebuild the index from the vault: every item with a key and extracted text. Returns how
    many items were indexed; `progress(done, total)` is called after each batch; one custody
    entry records the rebuild.

    With `workers` > 0, that many helper processes open the sealed texts while this process
    indexes (each receives the item identities of its batches over a local pipe, and keeps
    nothing). The index is cleared first, so searches find less until it finishes. Raises
    `keys.UnsealError` if a text does not open, `search.SearchError` if the engine fails (a
    second writer on the embedded index while `tvault serve` runs: stop the server first).
    """
    index = index_of(vault, rebuild=True)
    with vault.sessions() as session:
        total = int(session.scalar(select(func.count()).select_from(Item)) or 0)
    prepared = (_prepare(vault, rows) for rows in _batches(vault, batch))
    done = indexed = 0
    with contextlib.ExitStack() as stack:
        if workers > 0:
            pool = stack.enter_context(
                multiprocessing.get_context("spawn").Pool(
                    workers,
                    _child_start,
                    (vault.child_store, vault.settings.model_dump(exclude={"passphrase"})),
                )
            )
            # imap reads `prepared` ahead in its feeder thread and keeps the batches' order.
            opened: Iterator[tuple[int, list[IndexDocument]]] = pool.imap(_child_open, prepared)
        else:
            opened = (_open_all(vault.store, one) for one in prepared)
        with _write_lock:
            index.clear()
            try:
                for count, documents in opened:
                    indexed += index.index(documents)
                    done += count
                    if progress is not None:
                        progress(done, total)
                # The engine commits inside the transaction of the words and the entry.
                with _recorded(vault, index) as session:
                    index.commit()
                    ledger.append(
                        session,
                        actor=actor,
                        action=ledger.actions.INDEXING,
                        details={"reindex": True, "items": indexed, "engine": vault.settings.index},
                    )
            except BaseException:
                index.rollback()
                raise
    return indexed
