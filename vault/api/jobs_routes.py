"""Routes of the job queue, mounted under the authenticated `/v1`: jobs, retries, ingest state.

Listing and retrying jobs needs `job.manage` (custodians: they run the vault, and a job shows
only ids, states and reasons, never content); an item's ingest state needs `item.status` on the
item. Each refusal is a ledger entry (`vault.access.authorize`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from policies import Resource, actions, kinds
from vault import jobs, ocr
from vault.access import authorize, authorize_item
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal

router = APIRouter(tags=["jobs"], dependencies=[Depends(get_principal)])

_JOBS = Resource(kind=kinds.JOB)
MAX_JOBS = 1000


class JobOut(BaseModel):
    """A stage job of an item; `last_error` is the reason of its last failed attempt."""

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


class IngestOut(BaseModel):
    """How far an item's ingest has got: queued, extracting, extracted, indexed or failed."""

    item_id: str
    state: str
    reason: str | None
    attempts: int
    # extract, ocr, index: each pending, running, done, not needed or failed (vault/ocr.py)
    steps: list[dict[str, str]] = []


def _out(view: jobs.JobView) -> JobOut:
    return JobOut(**view.__dict__)


@router.get("/jobs")
def get_jobs(
    vault: VaultDep,
    principal: CurrentPrincipal,
    state: Annotated[list[str] | None, Query(description="Only jobs in these states.")] = None,
    item: Annotated[str | None, Query(description="Only the jobs of this item.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS)] = 100,
) -> list[JobOut]:
    """Jobs, newest first (custodians)."""
    authorize(vault.sessions, principal, actions.JOB_MANAGE, _JOBS)
    with vault.sessions() as session:
        views = jobs.list_jobs(session, states=state or (), item_id=item, limit=limit)
    return [_out(v) for v in views]


@router.post("/jobs/{job_id}/retry")
def retry_job(job_id: str, vault: VaultDep, principal: CurrentPrincipal) -> JobOut:
    """Queue a failed job again with a fresh set of attempts (custodians)."""
    authorize(vault.sessions, principal, actions.JOB_MANAGE, _JOBS)
    with vault.sessions.begin() as session:
        view = jobs.retry(session, job_id, now=vault.clock())
    return _out(view)


def item_ingest(vault: VaultDep, principal: CurrentPrincipal, item_id: str) -> jobs.ItemIngest:
    """Return the ingest state of `item_id` if `principal` may see it.

    Raises `NotFound` or `Forbidden`.
    """
    authorize_item(vault.sessions, principal, actions.ITEM_STATUS, item_id)
    with vault.sessions() as session:
        return jobs.ingest_state(session, item_id)


@router.get("/items/{item_id}/ingest")
def get_ingest(item_id: str, vault: VaultDep, principal: CurrentPrincipal) -> IngestOut:
    """An item's ingest state, with the reason when it failed."""
    state = item_ingest(vault, principal, item_id)
    with vault.sessions() as session:
        report = ocr.reports(session, [item_id]).get(item_id)
    return IngestOut(
        item_id=item_id,
        state=state.state.value,
        reason=state.reason,
        attempts=state.attempts,
        steps=ocr.steps(state, report),
    )
