"""The job queue: claims, leases, fencing, retries with backoff, and the worker loop.

Runs on SQLite and on PostgreSQL (the `vault` fixture). A recording stage stands in for the
real ones here; `tests/integration/test_jobs_extraction.py` runs the real `extract` stage.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from tests.unit.vault.conftest import principal
from vault import jobs
from vault.cases import create_case
from vault.db.jobs_tables import Job
from vault.deposit import Deposit
from vault.ids import new_id
from vault.parts import Vault
from vault.worker import StageFailed, Worker

LEASE = timedelta(seconds=30)


def deposit(vault: Vault, case_id: str, data: bytes = b"some words") -> str:
    fields = {"case": case_id, "kind": "testimony", "title": "T", "consent": "therapy"}
    job = Deposit.start(vault, principal(vault, "tina"), fields, len(data))
    job.write(data)
    return job.commit().item_id


@pytest.fixture
def case_id(vault: Vault) -> str:
    return create_case(vault, principal(vault, "tina"), "Case").id


def job_of(vault: Vault, item_id: str, kind: str = jobs.EXTRACT) -> Job:
    with vault.sessions() as session:
        job = session.scalars(select(Job).where(Job.item_id == item_id, Job.kind == kind)).one()
        session.expunge(job)
        return job


def test_a_deposit_queues_its_extraction_in_the_same_transaction(
    vault: Vault, case_id: str
) -> None:
    item = deposit(vault, case_id)
    job = job_of(vault, item)
    assert (job.state, job.attempts, job.max_attempts) == (jobs.QUEUED, 0, 5)
    with vault.sessions() as session:
        assert jobs.ingest_state(session, item).state == jobs.IngestState.QUEUED


def test_enqueue_is_idempotent(vault: Vault, case_id: str) -> None:
    item = deposit(vault, case_id)
    with vault.sessions.begin() as session:
        first = jobs.enqueue(session, item, jobs.INDEX, now=vault.clock())
        again = jobs.enqueue(session, item, jobs.INDEX, now=vault.clock())
    assert first == again
    with vault.sessions() as session:
        assert len(jobs.list_jobs(session, item_id=item)) == 2


def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(
    vault: Vault, case_id: str
) -> None:
    item = deposit(vault, case_id)
    now = vault.clock()
    first = jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE)
    assert first is not None and (first.item_id, first.attempt) == (item, 1)
    assert jobs.claim(vault.sessions, "b", {jobs.EXTRACT}, now=now, lease=LEASE) is None
    with vault.sessions() as session:
        assert jobs.ingest_state(session, item).state == jobs.IngestState.EXTRACTING
    # The heartbeat keeps it; once the lease runs out, another worker takes it over.
    assert jobs.heartbeat(vault.sessions, "a", [first.id], now=now, lease=LEASE) == 1
    later = now + LEASE + timedelta(seconds=1)
    second = jobs.claim(vault.sessions, "b", {jobs.EXTRACT}, now=later, lease=LEASE)
    assert second is not None and (second.id, second.attempt) == (first.id, 2)
    # The first worker is fenced off: its result cannot commit, nor its failure.
    with pytest.raises(jobs.LeaseLost), vault.sessions.begin() as session:
        jobs.complete(session, first, now=later)
    with pytest.raises(jobs.LeaseLost):
        jobs.fail(vault.sessions, first, "x", now=later, retry=True, backoff_seconds=1)
    assert jobs.heartbeat(vault.sessions, "a", [first.id], now=later, lease=LEASE) == 0
    with vault.sessions.begin() as session:
        jobs.complete(session, second, now=later)
    assert job_of(vault, item).state == jobs.DONE


def test_claims_only_the_kinds_asked_for(vault: Vault, case_id: str) -> None:
    deposit(vault, case_id)
    now = vault.clock()
    assert jobs.claim(vault.sessions, "a", {jobs.INDEX}, now=now, lease=LEASE) is None
    assert jobs.claim(vault.sessions, "a", set(), now=now, lease=LEASE) is None


def test_failures_back_off_then_fail_with_the_reason(vault: Vault, case_id: str) -> None:
    item = deposit(vault, case_id)
    now = vault.clock()
    waits = []
    for attempt in range(1, 6):
        claim = jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE)
        assert claim is not None and claim.attempt == attempt
        state = jobs.fail(
            vault.sessions, claim, f"timed out {attempt}", now=now, retry=True, backoff_seconds=10
        )
        job = job_of(vault, item)
        assert job.state == state
        if attempt < 5:
            assert state == jobs.QUEUED
            # Not due before the backoff has passed.
            assert jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE) is None
            waits.append(job.run_after - now)
            now = job.run_after
        else:
            assert state == jobs.FAILED
    assert waits == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    with vault.sessions() as session:
        failed = jobs.ingest_state(session, item)
        assert (failed.state, failed.reason) == (jobs.IngestState.FAILED, "timed out 5")
        assert [j.id for j in jobs.list_jobs(session, states=[jobs.FAILED])] == [
            job_of(vault, item).id
        ]


def test_a_permanent_failure_does_not_retry_and_retry_queues_it_again(
    vault: Vault, case_id: str
) -> None:
    deposit(vault, case_id)
    now = vault.clock()
    claim = jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE)
    assert claim is not None
    assert (
        jobs.fail(
            vault.sessions,
            claim,
            "encrypted PDF: no password",
            now=now,
            retry=False,
            backoff_seconds=10,
        )
        == jobs.FAILED
    )
    with vault.sessions.begin() as session:
        view = jobs.retry(session, claim.id, now=now)
    assert (view.state, view.attempts) == (jobs.QUEUED, 0)
    with vault.sessions.begin() as session, pytest.raises(jobs.Conflict):
        jobs.retry(session, claim.id, now=now)
    again = jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE)
    assert again is not None and again.attempt == 1


def test_backoff_is_capped() -> None:
    assert jobs.backoff(1, 10) == timedelta(seconds=10)
    assert jobs.backoff(40, 10) == jobs.MAX_BACKOFF


class Recording:
    """A stage that records each run; fails on the items it is told to."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.runs: list[tuple[str, int]] = []
        self.failing = failing or {}
        self.closed = False
        self.lock = threading.Lock()

    def run(self, claim: jobs.Claim) -> None:
        with self.lock:
            self.runs.append((claim.item_id, claim.attempt))
        if claim.item_id in self.failing:
            raise self.failing[claim.item_id]

    def close(self) -> None:
        self.closed = True


def test_the_worker_runs_each_job_once_and_records_failures(vault: Vault, case_id: str) -> None:
    items = [deposit(vault, case_id) for _ in range(4)]
    stage = Recording(
        {
            items[0]: StageFailed("the parser refused the file", retry=False),
            # Exceptions other than StageFailed are recorded by type only: messages can quote.
            items[1]: UnicodeDecodeError("utf-8", b"secret words", 0, 1, "bad"),
        }
    )
    worker = Worker(vault, stages={jobs.EXTRACT: lambda _v, _n: stage})
    assert worker.run_until_idle() == 4
    assert sorted(stage.runs) == sorted((i, 1) for i in items)
    with vault.sessions() as session:
        states = {i: jobs.ingest_state(session, i) for i in items}
    assert states[items[0]] == jobs.ItemIngest(
        jobs.IngestState.FAILED, "the parser refused the file", 1
    )
    assert states[items[1]].state == jobs.IngestState.QUEUED  # retried after a backoff
    assert job_of(vault, items[1]).last_error == "internal error (UnicodeDecodeError)"
    assert "secret" not in (job_of(vault, items[1]).last_error or "")
    for item in items[2:]:
        # Completed by the worker (this stage records nothing); no index stage registered yet.
        assert job_of(vault, item).state == jobs.DONE
        assert states[item].state == jobs.IngestState.EXTRACTED


def test_a_job_that_outlives_its_worker_too_often_fails(vault: Vault, case_id: str) -> None:
    item = deposit(vault, case_id)
    now = vault.clock()
    for _ in range(5):  # five workers died holding it
        assert jobs.claim(vault.sessions, "dead", {jobs.EXTRACT}, now=now, lease=LEASE)
        now += LEASE + timedelta(seconds=1)
    stage = Recording()
    worker = Worker(vault, stages={jobs.EXTRACT: lambda _v, _n: stage})
    vault.clock = lambda: now  # type: ignore[method-assign]
    assert worker.run_until_idle() == 1
    assert stage.runs == []
    job = job_of(vault, item)
    assert (job.state, job.last_error) == (
        jobs.FAILED,
        "the worker stopped during this job 5 times",
    )


def test_the_background_worker_starts_and_stops(vault: Vault, case_id: str) -> None:
    items = {deposit(vault, case_id) for _ in range(3)}
    stage = Recording()
    done = threading.Event()

    class Signalling(Recording):
        def run(self, claim: jobs.Claim) -> None:
            stage.run(claim)
            if {i for i, _ in stage.runs} == items:
                done.set()

    worker = Worker(vault, concurrency=2, stages={jobs.EXTRACT: lambda _v, _n: Signalling()})
    worker.start()
    try:
        worker.wake()
        assert done.wait(30)
    finally:
        worker.stop()
    assert sorted(i for i, _ in stage.runs) == sorted(items)
    with vault.sessions() as session:
        assert jobs.counts(session) == {jobs.DONE: 3}


def test_stopping_wakes_every_thread_at_once(vault: Vault) -> None:
    # Idle threads wait for a wake-up or the poll interval. One of them used to clear the
    # wake-up that stopping gave before another saw it, which then slept out the interval.
    vault.settings = vault.settings.model_copy(update={"jobs_poll_seconds": 3.0})
    worker = Worker(vault, concurrency=4, stages={jobs.EXTRACT: lambda _v, _n: Recording()})
    for _ in range(5):
        worker.start()
        worker.wake()
        started = time.monotonic()
        worker.stop()
        assert time.monotonic() - started < 1.5


def test_ingest_states_of_many_items_match_one_by_one(vault: Vault, case_id: str) -> None:
    items = [deposit(vault, case_id) for _ in range(3)]
    now = vault.clock()
    claim = jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE)
    assert claim is not None
    with vault.sessions.begin() as session:
        jobs.enqueue(session, claim.item_id, jobs.INDEX, now=now)
        jobs.complete(session, claim, now=now)
    with vault.sessions() as session:
        many = jobs.ingest_states(session, [*items, "nosuchitem"])
        assert many == {i: jobs.ingest_state(session, i) for i in [*items, "nosuchitem"]}
    assert many[claim.item_id].state == jobs.IngestState.EXTRACTED
    assert many["nosuchitem"].state == jobs.IngestState.NONE
    with vault.sessions() as session:
        assert jobs.ingest_states(session, []) == {}


def test_a_released_job_is_queued_again_with_its_attempt_refunded(
    vault: Vault, case_id: str
) -> None:
    item = deposit(vault, case_id)
    now = vault.clock()
    claim = jobs.claim(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE)
    assert claim is not None
    jobs.release(vault.sessions, claim, now=now)
    job = job_of(vault, item)
    assert (job.state, job.attempts, job.lease_owner) == (jobs.QUEUED, 0, None)
    again = jobs.claim(vault.sessions, "b", {jobs.EXTRACT}, now=now, lease=LEASE)
    assert again is not None and again.attempt == 1


def test_claim_many_takes_at_most_its_limit_oldest_first(vault: Vault, case_id: str) -> None:
    items = [deposit(vault, case_id) for _ in range(5)]
    now = vault.clock()
    first = jobs.claim_many(vault.sessions, "a", {jobs.EXTRACT}, now=now, lease=LEASE, limit=2)
    # On PostgreSQL an inlined `IN (... LIMIT n FOR UPDATE SKIP LOCKED)` claimed every due job.
    assert [c.item_id for c in first] == items[:2]
    assert all(c.attempt == 1 and c.owner == "a" for c in first)
    rest = jobs.claim_many(vault.sessions, "b", {jobs.EXTRACT}, now=now, lease=LEASE, limit=10)
    assert [c.item_id for c in rest] == items[2:]
    assert jobs.claim_many(vault.sessions, "c", {jobs.EXTRACT}, now=now, lease=LEASE, limit=3) == []
    for claim in first:
        assert job_of(vault, claim.item_id).lease_owner == "a"


def test_concurrent_claim_many_never_hands_out_a_job_twice(vault: Vault, case_id: str) -> None:
    items = {deposit(vault, case_id) for _ in range(24)}
    taken: list[list[jobs.Claim]] = [[], [], []]
    now = vault.clock()

    def claimer(n: int) -> None:
        while batch := jobs.claim_many(
            vault.sessions, f"w{n}", {jobs.EXTRACT}, now=now, lease=LEASE, limit=3
        ):
            taken[n].extend(batch)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [c.item_id for batch in taken for c in batch]
    assert sorted(ids) == sorted(items)  # every job once, none lost, none twice


def _queue(vault: Vault, count: int, kind: str = jobs.EXTRACT) -> None:
    """Queue `count` jobs at one and the same moment (as one enqueue of a batch does), for
    items that need not exist (foreign keys off while they are written)."""
    now = vault.clock()
    rows = [
        {
            "id": new_id(),
            "item_id": new_id(),
            "kind": kind,
            "state": jobs.QUEUED,
            "attempts": 0,
            "max_attempts": 5,
            "run_after": now,
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(count)
    ]
    with vault.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.execute(insert(Job), rows)
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _steps_of_a_claim(vault: Vault, limit: int) -> int:
    """Return the SQLite virtual-machine steps (in hundreds) one `claim_many` takes."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_progress_handler(count, 100)

    def on_checkin(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_progress_handler(None, 0)  # the pool keeps the connection

    event.listen(vault.engine, "checkout", on_checkout)
    event.listen(vault.engine, "checkin", on_checkin)
    try:
        claimed = jobs.claim_many(
            vault.sessions, "w", {jobs.EXTRACT}, now=vault.clock(), lease=LEASE, limit=limit
        )
    finally:
        event.remove(vault.engine, "checkout", on_checkout)
        event.remove(vault.engine, "checkin", on_checkin)
    assert len(claimed) == limit
    return steps


@pytest.mark.parametrize("database_url", [None])  # SQLite: its VM steps can be counted
def test_a_claim_costs_the_same_whatever_the_length_of_the_queue(vault: Vault) -> None:
    # A claim reads the index in the queue's order and stops at its limit. Gathering and
    # sorting every due job (as an OR of the two "due" conditions made SQLite do) grows with
    # the queue: it took 23 and 1,382 hundred steps here (this statement: 8 and 8).
    _queue(vault, 50)
    short = _steps_of_a_claim(vault, 7)
    _queue(vault, 4000)
    long = _steps_of_a_claim(vault, 7)
    assert long < 2 * short + 5, (short, long)


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
def test_a_claim_commits_without_fsync_and_leaves_full_sync_behind(
    vault: Vault, case_id: str
) -> None:
    # A claim is cheap to lose with the machine (the job is taken again), so on SQLite it
    # commits with synchronous=NORMAL; every other transaction keeps FULL (its fsync).
    deposit(vault, case_id)
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(
            statement.split()[0].upper() + (" " + statement if "PRAGMA" in statement else "")
        )

    event.listen(vault.engine, "before_cursor_execute", record)
    try:
        [claimed] = jobs.claim_many(
            vault.sessions,
            "w",
            {jobs.EXTRACT},
            now=vault.clock(),
            lease=timedelta(seconds=60),
            limit=1,
        )
    finally:
        event.remove(vault.engine, "before_cursor_execute", record)
    assert claimed.attempt == 1
    pragmas = [s for s in seen if "PRAGMA" in s]
    assert pragmas == ["PRAGMA PRAGMA synchronous=NORMAL", "PRAGMA PRAGMA synchronous=FULL"]
    assert seen.index(pragmas[0]) < seen.index("WITH") < seen.index(pragmas[1])
    for _ in range(3):  # whichever pooled connection comes next
        with vault.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
