"""The durable job queue: stage jobs in the metadata database, claimed under renewable leases.

DESIGN.md "Job queue": jobs live in the database, so a deposit and its extraction job commit
together and no job is lost. A worker claims a job in one short statement (PostgreSQL:
`FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on each other; SQLite: the same
`UPDATE ... RETURNING`, serialised by the database's one write lock), holds it under a lease its
heartbeat renews, and finishes it with `complete` inside the transaction that records the
stage's result. That update is fenced on the lease: a worker whose lease expired (it was thought
dead, and another claimed the job) cannot commit, so a stage's result commits exactly once.
A worker killed mid-job leaves a `running` job whose lease expires; the next claim takes it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Engine, Row
from sqlalchemy.orm import Session, sessionmaker

from vault.db.jobs_tables import Job
from vault.errors import Conflict, NotFound
from vault.ids import new_id

# Stage kinds. `index` is run by the search part's handler (vault.indexing), once registered.
EXTRACT: Final = "extract"
INDEX: Final = "index"

# Job states.
QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"

DEFAULT_MAX_ATTEMPTS: Final = 5
MAX_BACKOFF: Final = timedelta(hours=1)
REASON_CHARS: Final = 1000
# How the reason of a job given back uncharged (`defer`) begins; `ingest_state` shows it.
WAITING: Final = "waiting: "


class IngestState(enum.StrEnum):
    """What an item's ingest has reached (docs/jobs.md), derived from its stage jobs."""

    NONE = "none"  # deposited before the job queue existed: no stage was ever queued
    QUEUED = "queued"
    EXTRACTING = "extracting"
    EXTRACTED = "extracted"
    INDEXED = "indexed"
    FAILED = "failed"


class LeaseLost(Exception):
    """The job's lease passed to another worker: this worker must not record a result."""


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: what to run, and which attempt this is."""

    id: str
    item_id: str
    kind: str
    attempt: int
    max_attempts: int
    owner: str


@dataclass(frozen=True)
class JobView:
    """A job as `tvault jobs` and the API show it."""

    id: str
    item_id: str
    kind: str
    state: str
    attempts: int
    max_attempts: int
    last_error: str | None
    run_after: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ItemIngest:
    """The ingest state of one item, with the reason when it failed."""

    state: IngestState
    reason: str | None = None
    attempts: int = 0
    # The stage (`extract`, `index`) that failed, when one did; it follows from the jobs, so two
    # states that agree on the rest are the same state.
    stage: str | None = field(default=None, compare=False)


def _clip(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


def backoff(attempt: int, base_seconds: float) -> timedelta:
    """Return the wait before retry number `attempt` (1-based): `base * 2**(attempt-1)`, capped."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempt - 1, 0)), MAX_BACKOFF)


def enqueue(
    session: Session,
    item_id: str,
    kind: str,
    *,
    now: datetime,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Queue stage `kind` of `item_id` in `session`'s transaction; return the job id.

    Idempotent: if the item already has a job of that kind, its id is returned unchanged
    (a re-run stage never queues its successor twice). A concurrent enqueue of the same job
    makes one of the two transactions fail on the unique constraint.
    """
    return enqueue_many(session, [item_id], kind, now=now, max_attempts=max_attempts)[item_id]


_JOBS = cast(Table, Job.__table__)
# Built once: constructing a statement costs more than running it (bench/ingest.py).
_INSERT_JOB = _JOBS.insert()


def enqueue_many(
    session: Session,
    item_ids: Collection[str],
    kind: str,
    *,
    now: datetime,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> dict[str, str]:
    """Queue stage `kind` of each of `item_ids` in `session`'s transaction, as `enqueue` does
    one (one query and one insert for all); return the job id of each item."""
    wanted = sorted(set(item_ids))
    if not wanted:
        return {}
    found = session.execute(
        select(_JOBS.c.item_id, _JOBS.c.id).where(_JOBS.c.item_id.in_(wanted), _JOBS.c.kind == kind)
    )
    ids: dict[str, str] = {item_id: job_id for item_id, job_id in found}
    rows = [
        {
            "id": new_id(),
            "item_id": item_id,
            "kind": kind,
            "state": QUEUED,
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_after": now,
            "created_at": now,
            "updated_at": now,
        }
        for item_id in wanted
        if item_id not in ids
    ]
    if rows:
        session.execute(_INSERT_JOB, rows)
        ids.update((str(row["item_id"]), str(row["id"])) for row in rows)
    return ids


_KINDS = _JOBS.c.kind.in_(bindparam("kinds", expanding=True))
# Due: queued and its time has come, or running under a lease that expired (its worker died or
# hung). Two conditions, each a range of the index `ix_jobs_claim` (state, run_after, id).
_QUEUED_DUE = and_(_JOBS.c.state == QUEUED, _JOBS.c.run_after <= bindparam("now"))
_LEASE_EXPIRED = and_(_JOBS.c.state == RUNNING, _JOBS.c.lease_expires < bindparam("now"))
_PROBE = select(_JOBS.c.id).where(_KINDS, or_(_QUEUED_DUE, _LEASE_EXPIRED)).limit(1)


def _oldest(name: str, due: ColumnElement[bool], since: ColumnElement[datetime]) -> CTE:
    # MATERIALIZED: the candidates are chosen once. Inlined into `IN (...)`, PostgreSQL may
    # run the subquery again for each row it updates, and with SKIP LOCKED each run skips the
    # rows just locked and yields the next: `LIMIT 1` then claimed every due job (measured).
    return (
        select(_JOBS.c.id, since.label("due_at"))
        .where(due, _KINDS)
        .order_by(since, _JOBS.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte(name)
        .prefix_with("MATERIALIZED")
    )


# The `limit` oldest of the oldest `limit` queued jobs and the oldest `limit` jobs whose lease
# expired: each side reads its index in order and stops at `limit`. One condition with OR made
# both databases gather and sort every due job on every claim (measured on SQLite: 1.2 ms a
# claim with 500 queued jobs, 13 ms with 20,000; this statement 0.25-0.55 ms at either size).
# The update needs no second test of "due": SQLite runs the statement under its one write
# lock, and PostgreSQL's FOR UPDATE re-tests a row's newest version before it locks it, so a
# candidate is due and locked until the commit. Run again for each row, the outer subquery
# would read the same materialised candidates and give the same ids.
# A job whose lease expired is due from that moment, not from its `run_after`: it waits behind
# the jobs queued before its worker died, so a crash that interrupts the oldest jobs again and
# again does not charge the same few each time (a job that kills its workers still fails after
# `max_attempts` of them, docs/jobs.md). Running jobs are few: ordering them costs nothing.
_QUEUED = _oldest("queued", _QUEUED_DUE, _JOBS.c.run_after)
_EXPIRED = _oldest("expired", _LEASE_EXPIRED, _JOBS.c.lease_expires)
_CANDIDATES = union_all(
    select(_QUEUED.c.id, _QUEUED.c.due_at), select(_EXPIRED.c.id, _EXPIRED.c.due_at)
).subquery("candidates")
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.id.in_(
            select(_CANDIDATES.c.id)
            .order_by(_CANDIDATES.c.due_at, _CANDIDATES.c.id)
            .limit(bindparam("limit"))
        )
    )
    .values(
        state=RUNNING,
        attempts=_JOBS.c.attempts + 1,
        lease_owner=bindparam("owner"),
        lease_expires=bindparam("expires"),
        updated_at=bindparam("now"),
    )
    .returning(
        _JOBS.c.id,
        _JOBS.c.item_id,
        _JOBS.c.kind,
        _JOBS.c.attempts,
        _JOBS.c.max_attempts,
        _JOBS.c.run_after,
    )
)


def claim(
    sessions: sessionmaker[Session],
    owner: str,
    kinds: Collection[str],
    *,
    now: datetime,
    lease: timedelta,
) -> Claim | None:
    """Claim the oldest due job of one of `kinds` for `owner`; None if there is none.

    A read first, then one statement (`claim_many` with a limit of 1): `WITH queued AS
    MATERIALIZED (SELECT id, run_after ... LIMIT n FOR UPDATE SKIP LOCKED), expired AS ...
    UPDATE jobs SET state='running', lease ... WHERE id IN (SELECT id FROM (queued UNION ALL
    expired) ORDER BY run_after, id LIMIT n) RETURNING ...`. On PostgreSQL, rows other workers
    are claiming are skipped, not waited for; SQLite has no row locks and ignores the clause,
    but its single writer runs the statement atomically. The attempt count rises on every
    claim, including the re-claim of a job whose worker died.
    """
    if not kinds:
        return None
    # A read first: an idle worker polling must not take SQLite's write lock every time.
    with sessions() as session:
        if session.scalar(_PROBE, {"kinds": sorted(kinds), "now": now}) is None:
            return None
    claims = claim_many(sessions, owner, kinds, now=now, lease=lease, limit=1)
    return claims[0] if claims else None


def claim_many(
    sessions: sessionmaker[Session],
    owner: str,
    kinds: Collection[str],
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
) -> list[Claim]:
    """Claim up to `limit` of the oldest due jobs of `kinds` for `owner`, oldest first, in one
    statement and one transaction (as `claim`, which takes one); [] if none is due.

    For a stage that records several results in one transaction: one claim and one commit
    for the lot instead of one each. The rows a claim locks but does not take (PostgreSQL:
    at most `limit` more) are free again when it commits. Its cost does not grow with the
    length of the queue.
    """
    if not kinds or limit < 1:
        return []
    values = {
        "kinds": sorted(kinds),
        "now": now,
        "limit": limit,
        "owner": owner,
        "expires": now + lease,
    }
    found = _run_claim(sessions, values)
    # RETURNING gives rows in no promised order; the queue's order is (run_after, id).
    rows = sorted(found, key=lambda row: (row.run_after, row.id))
    return [
        Claim(
            id=row.id,
            item_id=row.item_id,
            kind=row.kind,
            attempt=int(row.attempts),
            max_attempts=int(row.max_attempts),
            owner=owner,
        )
        for row in rows
    ]


def _run_claim(sessions: sessionmaker[Session], values: dict[str, object]) -> list[Row[Any]]:
    """Run `_CLAIM` with `values` in a transaction of its own; return the rows it claimed.

    On SQLite the claim commits without an fsync (`synchronous=NORMAL` for this transaction,
    back to FULL after it): a claim is one more commit per document since a batch claims each
    job as it starts it, and what it writes may be lost only with the machine (power, kernel),
    never with the process: SQLite's write-ahead log is in the kernel's cache once the commit
    returns. A claim lost with the machine leaves the job as it was (queued, or held under a
    lease that expires), which any worker takes again; the results a stage records still
    commit with FULL, and their fsync makes every earlier frame of the log durable too.
    """
    engine = sessions.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        with sessions.begin() as session:
            return list(session.execute(_CLAIM, values).all())
    with engine.connect() as connection:
        # Outside any transaction: SQLite applies the setting to the next commit.
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
        connection.commit()
        try:
            with connection.begin():
                return list(connection.execute(_CLAIM, values).all())
        finally:
            connection.exec_driver_sql("PRAGMA synchronous=FULL")
            connection.commit()


def _held(claim: Claim) -> ColumnElement[bool]:
    return and_(Job.id == claim.id, Job.state == RUNNING, Job.lease_owner == claim.owner)


def complete(session: Session, claim: Claim, *, now: datetime) -> None:
    """Mark `claim` done inside `session`'s transaction, the one that records the result.

    Raises `LeaseLost` if the job is no longer this worker's: the caller's transaction must
    then roll back, so the result of a stage commits once, by the lease's holder.
    """
    complete_many(session, [claim], now=now)


_COMPLETE = (
    update(_JOBS)
    .where(
        _JOBS.c.id.in_(bindparam("ids", expanding=True)),
        _JOBS.c.state == RUNNING,
        _JOBS.c.lease_owner == bindparam("owner"),
    )
    .values(
        state=DONE,
        lease_owner=None,
        lease_expires=None,
        last_error=None,
        updated_at=bindparam("now"),
        finished_at=bindparam("now"),
    )
)


def complete_many(session: Session, claims: Sequence[Claim], *, now: datetime) -> None:
    """Mark every one of `claims` (one owner's) done in `session`'s transaction, in one
    statement. Raises `LeaseLost` if any of them is no longer held: the caller's transaction
    must then roll back whole (and may complete the others one by one)."""
    if not claims:
        return
    owners = {claim.owner for claim in claims}
    if len(owners) != 1:
        raise ValueError("complete_many takes the claims of one owner")
    ids = sorted({claim.id for claim in claims})
    result = session.execute(_COMPLETE, {"ids": ids, "owner": owners.pop(), "now": now})
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        lost = "job " + ids[0] if len(ids) == 1 else f"one of jobs {', '.join(ids)}"
        raise LeaseLost(f"{lost} is no longer held by {claims[0].owner}")


def fail(
    sessions: sessionmaker[Session],
    claim: Claim,
    reason: str,
    *,
    now: datetime,
    retry: bool,
    backoff_seconds: float,
) -> str:
    """Record a failed attempt of `claim` with `reason`; return the job's new state.

    With `retry` and attempts left, the job is queued again after `backoff`; otherwise it is
    failed for good with the reason. `reason` must hold no survivor text (it is shown in
    `tvault jobs` and logs): pass `ingest.ExtractionError.reason` or an exception's type name.
    Raises `LeaseLost` if the job is no longer this worker's (nothing is changed then).
    """
    final = not retry or claim.attempt >= claim.max_attempts
    state = FAILED if final else QUEUED
    with sessions.begin() as session:
        result = session.execute(
            update(Job)
            .where(_held(claim))
            .values(
                state=state,
                run_after=now + backoff(claim.attempt, backoff_seconds),
                lease_owner=None,
                lease_expires=None,
                last_error=_clip(reason),
                updated_at=now,
                finished_at=now if final else None,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"job {claim.id} is no longer held by {claim.owner}")
    return state


def release(sessions: sessionmaker[Session], claim: Claim, *, now: datetime) -> None:
    """Give `claim` back unrun (a worker shutting down): queued at once, the attempt refunded."""
    with sessions.begin() as session:
        session.execute(
            update(Job)
            .where(_held(claim))
            .values(
                state=QUEUED,
                attempts=Job.attempts - 1,
                run_after=now,
                lease_owner=None,
                lease_expires=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


def defer(
    sessions: sessionmaker[Session], claim: Claim, reason: str, *, now: datetime, delay: float
) -> None:
    """Give `claim` back unrun for a fault of the vault, not of the job (the object store is
    full, say): queued again after `delay` seconds with the attempt refunded, `reason` shown
    meanwhile. Raises `LeaseLost` if the job is no longer this worker's."""
    with sessions.begin() as session:
        result = session.execute(
            update(Job)
            .where(_held(claim))
            .values(
                state=QUEUED,
                attempts=Job.attempts - 1,
                run_after=now + timedelta(seconds=delay),
                lease_owner=None,
                lease_expires=None,
                last_error=_clip(reason),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"job {claim.id} is no longer held by {claim.owner}")


def heartbeat(
    sessions: sessionmaker[Session],
    owner: str,
    job_ids: Collection[str],
    *,
    now: datetime,
    lease: timedelta,
) -> int:
    """Extend the leases `owner` holds on `job_ids`; return how many it still holds."""
    if not job_ids:
        return 0
    with sessions.begin() as session:
        result = session.execute(
            update(Job)
            .where(Job.id.in_(sorted(job_ids)), Job.state == RUNNING, Job.lease_owner == owner)
            .values(lease_expires=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count


def retry(session: Session, job_id: str, *, now: datetime) -> JobView:
    """Queue the failed job `job_id` again with a fresh set of attempts.

    Raises `NotFound` for an unknown job, `Conflict` if it has not failed.
    """
    # Write first, read after: on SQLite a transaction that reads before it writes can fail
    # to take the write lock if another writer committed in between.
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == FAILED)
        .values(state=QUEUED, attempts=0, run_after=now, updated_at=now, finished_at=None)
        .execution_options(synchronize_session=False)
    )
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"job {job_id} is {job.state}, not failed")
    return _view(job)


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        item_id=job.item_id,
        kind=job.kind,
        state=job.state,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        last_error=job.last_error,
        run_after=job.run_after,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at if job.finished_at is not None else None,
    )


def list_jobs(
    session: Session,
    *,
    states: Sequence[str] = (),
    item_id: str | None = None,
    limit: int = 1000,
) -> list[JobView]:
    """Return jobs, newest first, optionally only those in `states` or of `item_id`."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if states:
        query = query.where(Job.state.in_(list(states)))
    if item_id is not None:
        query = query.where(Job.item_id == item_id)
    return [_view(job) for job in session.scalars(query)]


def counts(session: Session) -> dict[str, int]:
    """Return the number of jobs in each state."""
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state))
    return {state: int(n) for state, n in rows}


def ingest_state(session: Session, item_id: str) -> ItemIngest:
    """Return how far `item_id` has got: queued, extracting, extracted, indexed or failed.

    Derived from the item's `extract` and `index` jobs; a failed stage gives its reason.
    """
    return ingest_states(session, [item_id])[item_id]


def ingest_states(session: Session, item_ids: Collection[str]) -> dict[str, ItemIngest]:
    """Return the ingest state of each of `item_ids` (one query), as `ingest_state` does."""
    by_item: dict[str, dict[str, Job]] = {i: {} for i in item_ids}
    if item_ids:
        query = select(Job).where(Job.item_id.in_(sorted(item_ids)))
        for job in session.scalars(query):
            by_item[job.item_id][job.kind] = job
    return {item_id: _state_of(stages) for item_id, stages in by_item.items()}


def _state_of(jobs: dict[str, Job]) -> ItemIngest:
    extract = jobs.get(EXTRACT)
    if extract is None:
        return ItemIngest(IngestState.NONE)
    if extract.state == FAILED:
        return ItemIngest(IngestState.FAILED, extract.last_error, extract.attempts, EXTRACT)
    if extract.state == QUEUED:
        # A job given back for a fault of the vault (`defer`: a full store, say) says so.
        waiting = extract.last_error if (extract.last_error or "").startswith(WAITING) else None
        return ItemIngest(IngestState.QUEUED, waiting, extract.attempts)
    if extract.state == RUNNING:
        return ItemIngest(IngestState.EXTRACTING, None, extract.attempts)
    index = jobs.get(INDEX)
    if index is None or index.state in (QUEUED, RUNNING):
        return ItemIngest(IngestState.EXTRACTED, None, extract.attempts)
    if index.state == FAILED:
        return ItemIngest(IngestState.FAILED, index.last_error, index.attempts, INDEX)
    return ItemIngest(IngestState.INDEXED, None, index.attempts)
