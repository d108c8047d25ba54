"""Deposit: one streamed pass computes SHA-256, seals to a fresh item identity, and stores.

DESIGN.md "Deposit": the bytes go to the object store under the item's final, unguessable name;
only once the object is durable do the item row, its wrapped key and the custody entry commit,
in one transaction; then the object is locked. Any failure before that commit removes the
object (promise 7); a crash leaves an unreferenced object that `vault.sweep` removes.

`adopt` commits an object sealed already, outside the store (a finished resumable upload,
`vault.tus`, written in its final form as it arrived), under the same rules: the store takes the
file as it is (`ObjectStore.adopt`: for the local store a link, not a second pass).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

import keys
from ingest.languages import canonical_language
from policies import Principal, actions, decide
from vault import item_keys, jobs, ledger, signatures, storage_faults
from vault.access import NewItem, authorize_case, item_resource
from vault.db import Item, ItemKey
from vault.domain import CONSENT_SCOPES, KINDS
from vault.errors import BadField, TooLarge, VaultError
from vault.ids import new_id
from vault.objects import object_name
from vault.parts import Vault
from vault.sealing import seal_json
from vault.storage import StorageError
from vault.storage.buffers import aligned_buffer

log = logging.getLogger(__name__)

MAX_TEXT = {"title": 1000, "filename": 255, "notes": 20000}
PARALLEL = 1024 * 1024  # deposits past this size use two more threads (see `_Spool`)
SPOOL = 1024 * 1024  # ciphertext handed to the writing thread at a time
SPOOLS = 4  # ciphertext buffers in flight: bounds memory to about SPOOLS x (2 x SPOOL)
FIELDS = frozenset(
    {"case", "kind", "title", "language", "consent", "tags", "filename", "notes", "duplicates"}
)
# What to do with a deposit whose SHA-256 an item of the same case already has (docs/usage.md,
# "Duplicates"): store it and name the earlier item (the default), or refuse it (409).
DUPLICATES = ("store", "refuse")


@dataclass(frozen=True)
class DepositRequest:
    """The validated metadata of a deposit."""

    case_id: str
    kind: str
    title: str
    language: str | None
    consent: frozenset[str]
    tags: frozenset[str]
    filename: str | None
    notes: str | None
    refuse_duplicates: bool = False


@dataclass(frozen=True)
class DepositResult:
    """What the depositor gets back: the item id, the plaintext size and its SHA-256, and the
    earliest item of the same case with the same SHA-256 that the depositor may see, if any."""

    item_id: str
    size: int
    sha256: str
    duplicate_of: str | None = None


class Duplicate(VaultError):
    """The case already holds these bytes (item `item_id`) and the depositor asked to refuse."""

    code = "duplicate"

    def __init__(self, item_id: str) -> None:
        super().__init__(f"item {item_id} of this case has the same SHA-256; nothing stored")
        self.item_id = item_id

    def members(self) -> dict[str, object]:
        """The earlier item, for clients (`tvault ingest` skips the file)."""
        return {"duplicate_of": self.item_id}


class CommitGuard(Protocol):
    """What a caller may check as a deposit commits (`vault.idempotency.Claim` is one)."""

    def check(self, result: DepositResult) -> None:
        """Once the digest is known, before anything is durable; raise to refuse."""

    def record(self, session: Session, result: DepositResult) -> None:
        """Inside the deposit's transaction, last; raise to roll it back."""


def _words(raw: str | None) -> frozenset[str]:
    return frozenset(w.strip() for w in (raw or "").split(",") if w.strip())


def _text(fields: Mapping[str, str], name: str, *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None or not value.strip():
        if required:
            raise BadField(name, "required")
        return None
    if len(value) > MAX_TEXT[name] or "\x00" in value:
        raise BadField(name, f"at most {MAX_TEXT[name]} characters, no NUL")
    try:
        value.encode("utf-8")  # sealed as UTF-8 JSON; a lone surrogate has no encoding
    except UnicodeEncodeError:
        raise BadField(name, "not Unicode text") from None
    return value


def parse_request(fields: Mapping[str, str], vocabulary: tuple[str, ...]) -> DepositRequest:
    """Validate the metadata `fields` of a deposit (strings, lists comma-separated).

    Raises `BadField` naming the first field that is unknown, missing or malformed.
    """
    for name in fields:
        if name not in FIELDS:
            raise BadField(name, "unknown field")
    case_id = fields.get("case", "")
    if not case_id:
        raise BadField("case", "required")
    kind = fields.get("kind", "")
    if kind not in KINDS:
        raise BadField("kind", f"one of {', '.join(KINDS)}")
    language = fields.get("language") or None
    if language is not None:
        # Stored in the clear: a tag from the known list only, never free text (ingest.languages).
        language = canonical_language(language)
        if language is None:
            raise BadField("language", "a known BCP 47 tag such as `es`, `quc` or `es-419`")
    consent = _words(fields.get("consent"))
    if not consent or not consent <= set(CONSENT_SCOPES):
        raise BadField("consent", f"one or more of {', '.join(CONSENT_SCOPES)}")
    tags = _words(fields.get("tags"))
    if not tags <= set(vocabulary):
        raise BadField("tags", f"from the vault's vocabulary: {', '.join(vocabulary)}")
    # Without a title, the file name is the title, as `tvault deposit` does (issue 20 point 7).
    title = _text(fields, "title") or _text(fields, "filename")
    if title is None:
        raise BadField("title", "required (or a filename to take it from)")
    duplicates = fields.get("duplicates") or "store"
    if duplicates not in DUPLICATES:
        raise BadField("duplicates", f"one of {', '.join(DUPLICATES)}")
    return DepositRequest(
        case_id=case_id,
        kind=kind,
        title=title,
        language=language,
        consent=consent,
        tags=tags,
        filename=_text(fields, "filename"),
        notes=_text(fields, "notes"),
        refuse_duplicates=duplicates == "refuse",
    )


class _Spool:
    """Where the sealer writes: ciphertext gathered into `SPOOL`-byte batches, then stored.

    The sealer seals each chunk straight into the current buffer (`reserve`): copying the
    ciphertext in afterwards cost the deposit ratio of bench/deposit.py about a tenth (median
    0.38-0.45 with the copy, 0.51-0.52 without). Batches are exactly `SPOOL` bytes of
    page-aligned memory, which the local store writes past the page cache as they are (medians
    0.56-0.57, against 0.47-0.55 when it copied them into its own block first).

    Every batch is hashed (the ciphertext digest) on the sealing thread. Until `start`, each
    batch is also written there, and the plaintext hashed by the caller. After `start`, two
    threads take over, each in order (one worker each, FIFO): one hashes the plaintext pieces
    given to `plaintext`, the other writes the batches, while the caller seals the next one.
    `hashlib`, `os.write` and ChaCha20-Poly1305 (cryptography 50) release the GIL on large
    buffers, so the work spreads over both cores. Measured with bench/deposit.py (5 rounds):
    - the ciphertext digest stays on the sealing thread, which reads the batch while it is
      still in its core's cache: moving it to another thread was slower (ratio 0.32-0.36
      against 0.42-0.50);
    - writes have a thread of their own because a large object's blocks are written past the
      page cache (`O_DIRECT`), which waits for the disk: with one thread for the plaintext
      digest and the writes, the sealing thread waited 0.3-0.7 s per GiB for a free buffer,
      and the median ratio was 0.48-0.50; with two, 0.47-0.54, and 0.55 with `SPOOLS` 4.
    `SPOOLS` buffers rotate, and one is reused only once its batch was written, so memory
    stays flat whatever the size. Errors of the other threads are raised by the next `write`,
    `flush` or `drain`.
    """

    def __init__(self, write: Callable[[Any], object], plain_digest: Any) -> None:
        self._write = write
        self._plain_digest = plain_digest
        self.digest = hashlib.sha256()
        self.size = 0
        # Page-aligned, and handed over in batches of exactly `SPOOL` bytes (what runs past is
        # carried to the next buffer): the local store writes such batches past the page cache
        # without copying them. The margin holds one sealed chunk or the header past `SPOOL`.
        self._buffers = [aligned_buffer(SPOOL + 2 * keys.CHUNK_SIZE) for _ in range(SPOOLS)]
        self._current = 0
        self._fill = 0
        self._lent: memoryview | None = None  # the view `reserve` handed out last
        self._plain: list[bytes] = []
        self._worker: ThreadPoolExecutor | None = None  # writes
        self._hasher: ThreadPoolExecutor | None = None  # the plaintext digest
        self._pending: deque[Future[object]] = deque()
        self._writes: list[Future[object] | None] = [None] * SPOOLS

    @property
    def started(self) -> bool:
        return self._worker is not None

    def start(self, stack: ExitStack) -> None:
        """Move plaintext hashing and writes to threads of their own, stopped with `stack`."""
        hasher = ThreadPoolExecutor(1, "tvault-deposit-hash")
        worker = ThreadPoolExecutor(1, "tvault-deposit-write")
        # On abort, queued work is dropped and running work ends before the writer is removed.
        stack.callback(worker.shutdown, wait=True, cancel_futures=True)
        stack.callback(hasher.shutdown, wait=True, cancel_futures=True)
        self._hasher = hasher
        self._worker = worker

    def plaintext(self, data: bytes) -> None:
        """Queue `data` (immutable: exactly the bytes sealed) for the plaintext digest."""
        self._plain.append(data)

    def reserve(self, size: int) -> memoryview:
        """Lend the next `size` bytes of the current buffer: the sealer seals a chunk into them.

        The chunk is counted in when the sealer then passes this same view to `write`.
        """
        buffer = self._buffers[self._current]
        if self._fill + size > len(buffer):
            raise ValueError("a chunk larger than the spool's margin")  # never: 64 KiB + 16
        self._lent = buffer[self._fill : self._fill + size]
        return self._lent

    def write(self, data: memoryview) -> int:
        n = len(data)
        if data is self._lent:
            self._lent = None  # sealed in place: nothing to copy
            self._fill += n
        else:
            buffer = self._buffers[self._current]
            if self._fill + n > len(buffer):
                raise ValueError("a write larger than the spool's margin")  # never: the header
            buffer[self._fill : self._fill + n] = data
            self._fill += n
        if self._fill >= SPOOL:
            self._flush_full()
        return n

    def _flush_full(self) -> None:
        """Hand over the first `SPOOL` bytes; carry the rest to the start of the next buffer."""
        full = self._buffers[self._current]
        extra = self._fill - SPOOL
        self._fill = SPOOL
        self.flush()  # the next buffer is free when this returns
        if extra:
            # The batch handed over is full[:SPOOL]; the carried bytes lie past it.
            self._buffers[self._current][:extra] = full[SPOOL : SPOOL + extra]
            self._fill = extra

    def flush(self) -> None:
        """Hash the gathered ciphertext and store it (on the second thread once started)."""
        batch = self._buffers[self._current][: self._fill] if self._fill else None
        self._fill = 0
        if batch is not None:
            self.digest.update(batch)
            self.size += len(batch)
        if self._worker is None or self._hasher is None:
            if batch is not None:
                self._write(batch)
            return
        if self._plain:
            plain, self._plain = self._plain, []
            self._pending.append(self._hasher.submit(self._hash_plain, plain))
        if batch is not None:
            task = self._worker.submit(self._write, batch)
            self._pending.append(task)
            self._writes[self._current] = task
            self._current = (self._current + 1) % SPOOLS
            previous = self._writes[self._current]
            if previous is not None:
                previous.result()  # the next buffer is free only once its batch was written
                self._writes[self._current] = None
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()

    def _hash_plain(self, plain: list[bytes]) -> None:
        for piece in plain:
            self._plain_digest.update(piece)

    def drain(self) -> None:
        """Flush, then wait until the second thread did everything. Raises what it raised."""
        self.flush()
        while self._pending:
            self._pending.popleft().result()
        self._writes = [None] * SPOOLS


@dataclass(frozen=True)
class Sealed:
    """An item's object sealed already, in a local file outside the store (a finished
    resumable upload, `vault.tus`): what `adopt` needs to commit it as a deposit."""

    path: Path  # the whole age file, sealed to `identity`'s recipient
    identity: str  # the item's fresh age identity (wrapped under the KEK at commit)
    size: int  # plaintext bytes
    sha256: str  # of the plaintext
    ciphertext_sha256: str  # of the whole file, for `tvault verify --fast`
    ciphertext_size: int


class _Committing:
    """What every deposit shares once its object is sealed: the checks made as it commits
    (a signed statement's content, duplicates, the caller's guard), the item, wrapped key and
    custody entry in one transaction, the lock, and removing the object on failure."""

    def __init__(
        self,
        vault: Vault,
        principal: Principal,
        request: DepositRequest,
        signed: signatures.Checked | None,
        identity: str,
    ) -> None:
        self._vault = vault
        self._principal = principal
        self._request = request
        self._signed = signed
        self._settled = True  # False only between `start_unchecked` and `settle`
        self.item_id = new_id()
        self._object = object_name()
        self._identity = identity
        # A full, read-only or unreachable store (or a full database) refuses the deposit with
        # 507 or 503 and a ledger entry, not a 500 (vault.storage_faults).
        self._refusing = functools.partial(
            storage_faults.refusing, vault, principal, request.case_id
        )

    @classmethod
    def _check(
        cls,
        vault: Vault,
        principal: Principal,
        fields: Mapping[str, str],
        declared_size: int | None,
        statement: signatures.Presented | None,
    ) -> tuple[DepositRequest, signatures.Checked | None]:
        request = parse_request(fields, vault.settings.tags)
        if declared_size is not None and declared_size > vault.settings.max_upload_bytes:
            raise TooLarge(f"the limit is {vault.settings.max_upload_bytes} bytes")
        resource = item_resource(NewItem(request.case_id, request.consent, principal.subject))
        authorize_case(vault.sessions, principal, actions.ITEM_DEPOSIT, resource)
        signed = None
        if statement is not None:
            signed = signatures.check_deposit(
                vault,
                principal,
                case_id=request.case_id,
                kind=request.kind,
                filename=request.filename,
                consent=request.consent,
                presented=statement,
                declared_size=declared_size,
            )
        return request, signed

    def _decide(self, result: DepositResult, guard: CommitGuard | None) -> DepositResult:
        """The checks made once the digest is known, before anything is durable: raise to
        refuse; return the result naming an earlier item with the same bytes, if any."""
        if self._signed is not None:
            # Promise 2: what the depositor signed is what is stored, or nothing is.
            self._signed.check_content(result.sha256, result.size)
        # A retry or a refused duplicate is dropped here, and nothing of it stays.
        if guard is not None:
            guard.check(result)
        earlier = self._earlier(result.sha256)
        if earlier is not None and self._request.refuse_duplicates:
            self._refuse_duplicate(result, earlier)
        return dataclasses.replace(result, duplicate_of=earlier)

    def _recorded(
        self, result: DepositResult, guard: CommitGuard | None, ciphertext: tuple[str, int]
    ) -> DepositResult:
        """With the object durable: commit the records, or remove the object; then lock it."""
        try:
            self._record(result, guard, ciphertext)
        except BaseException:
            self._remove_unless_recorded()
            raise
        # Locked only after the commit, so a failed deposit's object can still be removed.
        try:
            self._vault.store.lock(self._object)
        except StorageError as exc:
            # The deposit is committed and its object referenced (the sweep never takes it);
            # only the retention failed, which an operator must see.
            log.error("item %s committed but its object could not be locked: %s", self.item_id, exc)
        return result

    def _remove_unless_recorded(self) -> None:
        # A failure while committing can leave the outcome unknown (a connection lost during
        # COMMIT): look before removing, so a committed item never loses its object.
        try:
            with self._vault.sessions() as session:
                if session.get(Item, self.item_id) is not None:
                    return
            self._vault.store.delete(self._object)
        except Exception as exc:
            # Left for the start-up sweep (unreferenced objects); the original error matters more.
            log.error("could not remove the object of failed deposit %s: %s", self.item_id, exc)

    def _earlier(self, sha256: str) -> str | None:
        """The earliest item of this case with `sha256` that the depositor may see, not shredded.

        Items the depositor may not see are never named (nor refused for): that would tell them
        what the case holds. Two deposits of the same bytes at the same moment may both miss
        each other and both be stored.
        """
        query = (
            select(Item)
            .join(ItemKey, ItemKey.item_id == Item.id)
            .where(Item.case_id == self._request.case_id, Item.sha256 == sha256)
            .order_by(Item.created_at, Item.id)
        )
        with self._vault.sessions() as session:
            for item in session.scalars(query):
                if decide(self._principal, actions.ITEM_STATUS, item_resource(item)):
                    return item.id
        return None

    def _refuse_duplicate(self, result: DepositResult, earlier: str) -> None:
        # Every refusal is a ledger entry (docs/ledger.md); the digest is structural.
        with self._vault.sessions.begin() as session:
            ledger.append(
                session,
                actor=self._principal,
                action=ledger.actions.DEPOSIT_REFUSED,
                case_id=self._request.case_id,
                details={
                    "attempted": actions.ITEM_DEPOSIT,
                    "cause": Duplicate.code,
                    "duplicate_of": earlier,
                    "sha256": result.sha256,
                },
            )
        raise Duplicate(earlier)

    def _record(
        self, result: DepositResult, guard: CommitGuard | None, ciphertext: tuple[str, int]
    ) -> None:
        vault, request = self._vault, self._request
        identity = self._identity
        sealed = seal_json(
            {"title": request.title, "filename": request.filename, "notes": request.notes},
            keys.recipient_of(identity),
        )
        with vault.sessions.begin() as session:
            session.add(
                Item(
                    id=result.item_id,
                    case_id=request.case_id,
                    kind=request.kind,
                    language=request.language,
                    tags=sorted(request.tags),
                    consent=sorted(request.consent),
                    size=result.size,
                    sha256=result.sha256,
                    object_name=self._object,
                    depositor=self._principal.subject,
                    created_at=vault.clock(),
                    sealed_meta=sealed,
                )
            )
            session.flush()
            ledger.append(
                session,
                actor=self._principal,
                action=ledger.actions.INGESTION,
                item_id=result.item_id,
                case_id=request.case_id,
                details={
                    "sha256": result.sha256,
                    "size": result.size,
                    "kind": request.kind,
                    "signed": self._signed is not None,
                    # The consent given at deposit: `tvault verify` replays it (vault.replay).
                    "consent": sorted(request.consent),
                }
                # Stored knowingly as a second copy: an auditor sees which item it repeats.
                | ({"duplicate_of": result.duplicate_of} if result.duplicate_of else {}),
            )
            # After the entry: it holds the writers' lock, so the KEK epoch read is the one
            # current when this commits (vault.item_keys).
            item_keys.store(vault, session, result.item_id, identity)
            signatures.record_ciphertext(session, result.item_id, *ciphertext)
            if self._signed is not None:
                item = session.get(Item, result.item_id)
                assert item is not None
                signatures.record(
                    session,
                    item=item,
                    recipient=keys.recipient_of(identity),
                    checked=self._signed,
                    role=signatures.DEPOSITOR,
                    now=vault.clock(),
                )
            # DESIGN.md "Deposit": the extraction job commits with the item, so none is lost.
            jobs.enqueue(
                session,
                result.item_id,
                jobs.EXTRACT,
                now=vault.clock(),
                max_attempts=vault.settings.jobs_max_attempts,
            )
            if guard is not None:
                guard.record(session, result)


class Deposit(_Committing):
    """One deposit in progress: `start`, then `write` the bytes, then `commit` or `abort`.

    Not thread-safe; sealing is CPU-bound, so callers on an event loop run `write` in a thread.
    """

    def __init__(
        self,
        vault: Vault,
        principal: Principal,
        request: DepositRequest,
        signed: signatures.Checked | None = None,
    ) -> None:
        identity, recipient = keys.generate_identity()
        super().__init__(vault, principal, request, signed, identity)
        self._hash = hashlib.sha256()
        self._size = 0
        self._limit = vault.settings.max_upload_bytes
        self._stack = ExitStack()
        with self._refusing():
            self._writer = self._stack.enter_context(vault.store.writer(self._object))
        # The ciphertext's SHA-256, in the same pass, for `tvault verify --fast`.
        self._spool = _Spool(self._writer.write, self._hash)
        try:
            self._sealer = keys.Sealer(
                cast(BinaryIO, self._spool), [recipient], reserve=self._spool.reserve
            )
        except BaseException:
            self._stack.close()
            raise

    @classmethod
    def start(
        cls,
        vault: Vault,
        principal: Principal,
        fields: Mapping[str, str],
        declared_size: int | None = None,
        statement: signatures.Presented | None = None,
    ) -> Deposit:
        """Check `fields`, the case, the policy and a signed `statement`, then open the object.

        Raises `BadField` (also for a statement that does not verify or match), `NotFound`
        (unknown case), `TooLarge` (`declared_size` over the limit) or `Forbidden`; nothing is
        written then.
        """
        request, signed = cls._check(vault, principal, fields, declared_size, statement)
        return cls(vault, principal, request, signed)

    @classmethod
    def start_unchecked(cls, vault: Vault, principal: Principal, case_id: str) -> Deposit:
        """Open the object of a deposit into `case_id` whose metadata is not known yet (a
        multipart body whose fields follow its file part). **Nothing is decided yet**: `settle`
        must pass before `commit`, which refuses otherwise; the bytes written meanwhile are
        sealed to the item's fresh key like any others, and removed by `abort`."""
        placeholder = DepositRequest(
            case_id, "", "", None, frozenset(), frozenset(), None, None, refuse_duplicates=False
        )
        made = cls(vault, principal, placeholder)
        made._settled = False
        return made

    def settle(
        self, fields: Mapping[str, str], statement: signatures.Presented | None = None
    ) -> None:
        """Check the complete metadata `fields` (and a signed `statement`) as `start` does, with
        the size now known, and take them for this deposit. Raises as `start` does; the caller
        then calls `abort`."""
        if fields.get("case") != self._request.case_id:
            raise BadField("case", "cannot change once the file has begun")
        self._request, self._signed = self._check(
            self._vault, self._principal, fields, self._size, statement
        )
        self._settled = True

    def write(self, data: bytes) -> None:
        """Hash and seal `data`. Raises `TooLarge` past the limit (then call `abort`)."""
        self._size += len(data)
        if self._size > self._limit:
            raise TooLarge(f"the limit is {self._limit} bytes")
        spool = self._spool
        if not spool.started and self._size >= PARALLEL:
            spool.start(self._stack)
        if spool.started:
            # The second thread hashes it later: only an immutable copy is exactly what was
            # sealed (`bytes` from the HTTP server is one already).
            spool.plaintext(data if type(data) is bytes else bytes(data))
        else:
            self._hash.update(data)
        with self._refusing():
            self._sealer.write(data)

    def abort(self) -> None:
        """Give up: the object store removes every trace of the object."""
        self._stack.close()

    def commit(self, guard: CommitGuard | None = None) -> DepositResult:
        """Make the object durable, then commit item, wrapped key and custody entry together.

        Raises `Duplicate` when the request refuses duplicates and the case has these bytes,
        what `guard` raises, `StorageFull` / `StorageUnavailable` for a store or database that
        cannot take it (recorded in the ledger), or whatever the store or the database raised;
        the object is removed then.
        """
        with self._refusing():
            return self._commit(guard)

    def _commit(self, guard: CommitGuard | None) -> DepositResult:
        if not self._settled:
            self.abort()
            raise BadField("body", "the deposit's metadata was never checked")
        if self._size == 0:
            self.abort()
            raise BadField("body", "an empty file cannot be deposited")
        try:
            # The plaintext digest is complete only once the second thread is done. The digest
            # is known only now, with the object written but not yet durable.
            self._spool.drain()
            result = DepositResult(self.item_id, self._size, self._hash.hexdigest())
            result = self._decide(result, guard)
        except BaseException:
            self.abort()
            raise
        with self._stack:
            self._sealer.close()
            self._spool.drain()
            self._writer.commit()
        return self._recorded(result, guard, (self._spool.digest.hexdigest(), self._spool.size))


class _Adoption(_Committing):
    """The commit of an object sealed already (`Sealed`), through `ObjectStore.adopt`."""

    def __init__(
        self,
        vault: Vault,
        principal: Principal,
        request: DepositRequest,
        signed: signatures.Checked | None,
        sealed: Sealed,
    ) -> None:
        super().__init__(vault, principal, request, signed, sealed.identity)
        self._sealed = sealed

    def commit(self, guard: CommitGuard | None) -> DepositResult:
        sealed = self._sealed
        with self._refusing():
            if sealed.size == 0:
                raise BadField("body", "an empty file cannot be deposited")
            result = self._decide(DepositResult(self.item_id, sealed.size, sealed.sha256), guard)
            # Durable under its final name (the local store links the file into place); the
            # file stays with the caller if this fails, and no object exists then.
            self._vault.store.adopt(self._object, sealed.path)
            return self._recorded(result, guard, (sealed.ciphertext_sha256, sealed.ciphertext_size))


def adopt(
    vault: Vault,
    principal: Principal,
    fields: Mapping[str, str],
    sealed: Sealed,
    statement: signatures.Presented | None = None,
    guard: CommitGuard | None = None,
) -> DepositResult:
    """Deposit the object `sealed` already holds, as `Deposit` deposits streamed bytes: the
    fields, case, policy and a signed `statement` checked again (the statement's content
    against `sealed.sha256`), duplicates, `guard`, then the object moved into the store and
    item, wrapped key and custody entry committed in one transaction, then the object locked.

    Raises what `Deposit.start` and `Deposit.commit` raise; no object and no record remain
    then, and `sealed.path` is the caller's to remove. The caller vouches for the digests and
    sizes in `sealed`: they are recorded as they are.
    """
    request, signed = _Committing._check(vault, principal, fields, sealed.size, statement)
    return _Adoption(vault, principal, request, signed, sealed).commit(guard)
