"""Workers that run stage jobs: the loop, and the server's embedded worker.

A stage (`extract`, `index`, ...) is a `factory(vault, concurrency)` that builds one `Stage` per
worker, which holds what the stage needs (an extractor pool, an index writer) until `close`;
`vault.compose.stages()` names each by its kind, as callables (no import strings). A `Worker`
runs `concurrency` threads that claim due jobs of the kinds it was given (`vault.jobs.claim`),
plus one heartbeat thread that renews their leases. It is a `vault.parts.Service`: `tvault
serve` runs one in the server process, and `tvault worker` runs one standalone. Contract for
a stage's `run(claim)`:

- record the result and call `vault.jobs.complete(session, claim, now=...)` in ONE transaction
  (that call is fenced on the lease, so a result commits once), and return True; if a stage
  records nothing in the database, it returns None or False and the worker completes the job
  after `run` returns;
- be idempotent: a worker killed after some side effect but before that commit runs again;
- raise `StageFailed(reason, retry=...)` for a failure it understands; `reason` is shown to
  custodians and must hold no survivor text. Any other exception is retried, and recorded by
  its type name only (an exception's message can quote the data it choked on).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Protocol

from vault import jobs, storage_faults
from vault.parts import Vault

log = logging.getLogger(__name__)


class Stage(Protocol):
    """One stage, built once per worker; `run` is called from several threads at once."""

    def run(self, claim: jobs.Claim) -> bool | None:
        """Do the work of `claim`; return True if it completed the job itself (see the module
        docstring)."""

    def close(self) -> None:
        """Release what the stage holds (parser processes, index writers)."""


StageFactory = Callable[[Vault, int], Stage]


class StageFailed(Exception):
    """A stage failed for a reason people can read; `retry` says whether trying again may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def worker_threads(concurrency: int) -> int:
    """Return how many threads a worker with `concurrency` parser processes runs (see
    `Worker.start`)."""
    return concurrency * 2 + 2


def overrun(claim: jobs.Claim) -> str | None:
    """Return why `claim` must fail unrun, or None: a job re-claimed after its lease expired once
    too often kills or hangs its worker, and must not take every worker down in turn."""
    if claim.attempt > claim.max_attempts:
        return f"the worker stopped during this job {claim.attempt - 1} times"
    return None


def fail_job(vault: Vault, claim: jobs.Claim, failure: BaseException) -> None:
    """Record `failure` of `claim`, a job a stage ran as part of another job's batch, as the
    worker records a stage's failure: `StageFailed` with its reason and retry, any other
    exception by its type name only, retried. Does nothing if the lease passed to another
    worker."""
    if isinstance(failure, jobs.LeaseLost):
        return
    cause = storage_faults.store_fault(failure)
    if cause is not None:
        defer_job(
            vault, claim, cause, storage_faults.wait_seconds(1, vault.settings.jobs_backoff_seconds)
        )
        return
    if isinstance(failure, StageFailed):
        reason, retry = failure.reason, failure.retry
    else:
        # Type name only: the message of, say, a UnicodeDecodeError quotes the bytes.
        reason, retry = f"internal error ({type(failure).__name__})", True
    with contextlib.suppress(jobs.LeaseLost):
        jobs.fail(
            vault.sessions,
            claim,
            reason,
            now=vault.clock(),
            retry=retry,
            backoff_seconds=vault.settings.jobs_backoff_seconds,
        )


def defer_job(vault: Vault, claim: jobs.Claim, cause: str, delay: float) -> None:
    """Queue `claim` again after `delay` seconds with its attempt refunded, because the store
    or the database cannot take data (`cause`, from `vault.storage_faults.CAUSES`): the job
    is not at fault, and burning its attempts would fail it for good while the disk is full."""
    with contextlib.suppress(jobs.LeaseLost):
        jobs.defer(
            vault.sessions,
            claim,
            f"{jobs.WAITING}{cause} (the attempt is not counted)",
            now=vault.clock(),
            delay=delay,
        )


@contextlib.contextmanager
def leases_kept(vault: Vault, claims: Sequence[jobs.Claim]) -> Iterator[None]:
    """Renew the leases of `claims` (one owner's; a list may grow meanwhile) every third of the
    lease while the block runs.

    For the other jobs of a stage's batch: the worker's heartbeat renews only the job it
    handed to the stage. Without this, a batch that outlasts the lease (a slow index commit on
    a busy machine) lets its jobs' leases expire; other threads re-claim them, each claim
    charging an attempt, until jobs no worker ever stopped on fail as "the worker stopped
    during this job" (seen by tests/integration/test_crashes.py on PostgreSQL).
    """
    lease = timedelta(seconds=vault.settings.jobs_lease_seconds)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            # Read each time: a batch may grow while it runs (the extract stage's does).
            held = list(claims)
            if not held:
                continue
            owner, ids = held[0].owner, [claim.id for claim in held]
            try:
                jobs.heartbeat(vault.sessions, owner, ids, now=vault.clock(), lease=lease)
            except Exception as exc:
                log.warning("worker %s: batch heartbeat failed: %s", owner, type(exc).__name__)

    thread = threading.Thread(target=renew, name="tvault-batch-leases", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """Claims and runs stage jobs on `concurrency` threads until stopped (a `vault.parts.Service`).

    `stop()` lets each thread finish the job in hand (an extraction is bounded by its time
    limit), then returns; a job claimed but not started is released at once.
    """

    def __init__(
        self,
        vault: Vault,
        *,
        concurrency: int = 1,
        stages: dict[str, StageFactory],
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._vault = vault
        self._concurrency = concurrency
        self._factories = dict(stages)
        self._stages: dict[str, Stage] = {}
        self._stop = threading.Event()
        self._beat_stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._beat: threading.Thread | None = None
        self._held: dict[str, str] = {}  # job id -> owner, for the heartbeat
        self._lock = threading.Lock()
        # Store faults in a row, and until when (time.monotonic()) no thread claims a job.
        self._faults = 0
        self._paused_until = 0.0
        self.owner = _owner()
        settings = vault.settings
        self._lease = timedelta(seconds=settings.jobs_lease_seconds)
        self._poll = settings.jobs_poll_seconds
        self._backoff = settings.jobs_backoff_seconds

    @property
    def kinds(self) -> frozenset[str]:
        """Return the job kinds this worker runs."""
        return frozenset(self._factories)

    def _build(self) -> None:
        if not self._stages:
            for kind, factory in self._factories.items():
                self._stages[kind] = factory(self._vault, self._concurrency)

    def start(self) -> None:
        """Build the stages and start the threads; return at once."""
        self._build()
        self._stop.clear()
        self._beat_stop.clear()
        # Two threads per stage slot (parser process) and two more: a parser process holds the
        # request it parses and the next (`ingest.adapters.tika_native.DEPTH`), and the other
        # threads meanwhile decrypt the next documents, seal texts and commit batches, so the
        # parsers are never idle waiting for this process. bench/ingest.py, one worker: 1 thread
        # more than slots 141-144 documents/s, 3 more 167-170 (2026-12-04).
        for n in range(worker_threads(self._concurrency)):
            thread = threading.Thread(
                target=self._loop, args=(f"{self.owner}/{n}",), name=f"tvault-worker-{n}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        self._beat = threading.Thread(target=self._heartbeat, name="tvault-worker-heartbeat")
        self._beat.daemon = True
        self._beat.start()
        log.info(
            "worker %s started: %s x%d", self.owner, ",".join(sorted(self.kinds)), self._concurrency
        )

    def wake(self) -> None:
        """Look for jobs now instead of after the poll interval."""
        self._wake.set()

    def stop(self) -> None:
        """Stop: let jobs in hand finish, join the threads, close the stages."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        # Leases are renewed until the last job in hand has finished.
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        for stage in self._stages.values():
            stage.close()
        self._stages.clear()
        log.info("worker %s stopped", self.owner)

    def run_until_idle(self) -> int:
        """Run due jobs on this thread until none is left; return how many ran (tests, bench)."""
        self._build()
        ran = 0
        owner = f"{self.owner}/sync"
        while self.run_one(owner):
            ran += 1
        return ran

    def run_one(self, owner: str) -> bool:
        """Claim one due job as `owner` and run it; return False if there was none."""
        self._build()
        now = self._vault.clock()
        claim = jobs.claim(self._vault.sessions, owner, self.kinds, now=now, lease=self._lease)
        if claim is None:
            return False
        with self._lock:
            self._held[claim.id] = owner
        try:
            if self._stop.is_set():
                jobs.release(self._vault.sessions, claim, now=self._vault.clock())
            else:
                self._execute(claim)
        finally:
            with self._lock:
                self._held.pop(claim.id, None)
        return True

    def _loop(self, owner: str) -> None:
        while not self._stop.is_set():
            with self._lock:
                pause = self._paused_until - time.monotonic()
            if pause > 0:
                # The store is full or read-only: claiming would only charge jobs (issue 23).
                self._stop.wait(pause)
                continue
            try:
                busy = self.run_one(owner)
            except Exception as exc:  # the database went away, say: wait and try again
                log.warning("worker %s: cannot claim a job: %s", owner, type(exc).__name__)
                busy = False
            if not busy:
                self._wake.wait(self._poll)
                self._wake.clear()
                if self._stop.is_set():
                    # The wake-up of `stop` is for every thread: leave it set for the others
                    # (cleared, one of them slept out the whole poll interval before it ended).
                    self._wake.set()

    def _heartbeat(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._beat_stop.wait(interval):
            with self._lock:
                held = dict(self._held)
            by_owner: dict[str, list[str]] = {}
            for job_id, owner in held.items():
                by_owner.setdefault(owner, []).append(job_id)
            for owner, ids in by_owner.items():
                try:
                    jobs.heartbeat(
                        self._vault.sessions, owner, ids, now=self._vault.clock(), lease=self._lease
                    )
                except Exception as exc:
                    log.warning("worker %s: heartbeat failed: %s", owner, type(exc).__name__)

    def _execute(self, claim: jobs.Claim) -> None:
        reason = overrun(claim)
        if reason is not None:
            self._fail(claim, reason, retry=False)
            return
        stage = self._stages[claim.kind]
        started = time.monotonic()
        try:
            completed = stage.run(claim)
        except StageFailed as exc:
            self._fail(claim, exc.reason, retry=exc.retry)
            return
        except jobs.LeaseLost:
            log.warning("job %s: lease lost to another worker; result discarded", claim.id)
            return
        except Exception as exc:
            cause = storage_faults.store_fault(exc)
            if cause is not None:
                self._pause(claim, cause)
                return
            # Type name only: the message of, say, a UnicodeDecodeError quotes the bytes.
            self._fail(claim, f"internal error ({type(exc).__name__})", retry=True)
            return
        if not completed:
            self._complete_if_held(claim)
        with self._lock:
            self._faults = 0
        log.info(
            "job %s (%s, item %s) done by %s in %.2f s",
            claim.id,
            claim.kind,
            claim.item_id,
            claim.owner,
            time.monotonic() - started,
        )

    def _pause(self, claim: jobs.Claim, cause: str) -> None:
        """Give `claim` back uncharged and stop claiming for a while: the store (or database)
        cannot take data, which no job can mend. The wait doubles while the fault lasts; the
        first job that completes afterwards resets it (`vault.storage_faults.wait_seconds`)."""
        with self._lock:
            now = time.monotonic()
            if now >= self._paused_until:
                # Threads that meet the fault during the same pause count it once.
                self._faults += 1
                wait = storage_faults.wait_seconds(self._faults, self._backoff)
                self._paused_until = now + wait
            else:
                wait = self._paused_until - now
        defer_job(self._vault, claim, cause, wait)
        log.warning(
            "worker %s: %s; job %s waits %.1f s, uncharged", self.owner, cause, claim.id, wait
        )

    def _complete_if_held(self, claim: jobs.Claim) -> None:
        # A stage that records its result completes the job in that transaction; this covers
        # the stages that record nothing.
        try:
            with self._vault.sessions.begin() as session:
                jobs.complete(session, claim, now=self._vault.clock())
        except jobs.LeaseLost:
            pass

    def _fail(self, claim: jobs.Claim, reason: str, *, retry: bool) -> None:
        try:
            state = jobs.fail(
                self._vault.sessions,
                claim,
                reason,
                now=self._vault.clock(),
                retry=retry,
                backoff_seconds=self._backoff,
            )
        except jobs.LeaseLost:
            log.warning("job %s: lease lost to another worker", claim.id)
            return
        log.info(
            "job %s (%s, item %s) attempt %d/%d failed, now %s: %s",
            claim.id,
            claim.kind,
            claim.item_id,
            claim.attempt,
            claim.max_attempts,
            state,
            reason,
        )
