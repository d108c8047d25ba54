"""The custodian's pages: the approvals queue (approve, deny with a reason) and failed jobs with
retry, through the same use cases as `/v1/approvals` and `/v1/jobs`."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from policies import Resource, actions, kinds
from vault import approval_kinds, approvals, exports, jobs, keystate, token_keys
from vault.access import authorize
from vault.api.deps import VaultDep
from vault.db import ItemKey
from vault.errors import Forbidden
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import N_, render, translate

# Every page here needs a signed-in session; the policy decides who may use them.
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

# The kinds this vault knows (imported for their registrations), as a custodian reads them.
KIND_NAMES: Final = {
    approval_kinds.SHRED: N_("Shred an item"),
    approval_kinds.LIFT_HOLD: N_("Lift a legal hold"),
    approval_kinds.RETIRE_KEYS: N_("Retire key versions"),
    exports.EXPORT: N_("Export to a commission"),
}
APPROVAL_STATES: Final = {
    approvals.PENDING: N_("waiting for a decision"),
    approvals.APPROVED: N_("approved"),
    approvals.DENIED: N_("denied"),
    approvals.DONE: N_("approved and done"),
    approvals.FAILED: N_("approved, but the action failed"),
}
OWN_REQUEST: Final = N_(
    "You asked for this yourself. A second custodian must approve it: nothing was changed."
)
_JOBS = Resource(kind=kinds.JOB)
_KEYS = Resource(kind=kinds.KEY)
FAILED_JOBS_SHOWN: Final = 200
TOKEN_KEYS_SHOWN: Final = 20


def _names(request: Request, record: approvals.ApprovalRecord) -> dict[str, str]:
    return {
        "kind": translate(request, KIND_NAMES.get(record.kind, record.kind)),
        "state": translate(request, APPROVAL_STATES.get(record.state, record.state)),
    }


@pages.get("/approvals")
def approval_queue(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The approvals, newest first: those waiting for a decision, then the decided ones."""
    records = approvals.list_approvals(vault, current.principal)
    waiting = [(r, _names(request, r)) for r in records if r.state == approvals.PENDING]
    decided = [(r, _names(request, r)) for r in records if r.state != approvals.PENDING]
    return render(request, "approvals.html", waiting=waiting, decided=decided)


def _approval_page(
    request: Request, vault: VaultDep, current: Signed, approval_id: str, message: str | None
) -> Response:
    record = approvals.detail(vault, current.principal, approval_id)
    return render(
        request,
        "approval.html",
        status=403 if message else 200,
        approval=record,
        names=_names(request, record),
        own=record.requested_by == current.principal.subject,
        message=message,
    )


@pages.get("/approvals/{approval_id}")
def approval(approval_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """One approval with its note (and denial reason) opened, and the forms to decide on it."""
    return _approval_page(request, vault, current, approval_id, None)


@pages.post("/approvals/{approval_id}/approve")
def approve(
    approval_id: str, request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Say yes (never to one's own request); the action runs once the quorum is met."""
    record = approvals.show(vault, current.principal, approval_id)
    try:
        approvals.approve(vault, current.principal, approval_id)
    except Forbidden:
        if record.requested_by != current.principal.subject:
            raise
        # The two-person rule, said plainly rather than as a bare "you may not".
        return _approval_page(request, vault, current, approval_id, translate(request, OWN_REQUEST))
    return RedirectResponse(f"/approvals/{record.id}", status_code=303)


@pages.post("/approvals/{approval_id}/deny")
def deny(
    approval_id: str, request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Say no, with a reason (sealed); nothing runs."""
    record = approvals.deny(vault, current.principal, approval_id, str(form.get("reason", "")))
    return RedirectResponse(f"/approvals/{record.id}", status_code=303)


@pages.get("/jobs")
def failed_jobs(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The failed jobs, newest first, each with a retry button (ids, states and reasons only)."""
    authorize(vault.sessions, current.principal, actions.JOB_MANAGE, _JOBS)
    with vault.sessions() as session:
        failed = jobs.list_jobs(session, states=[jobs.FAILED], limit=FAILED_JOBS_SHOWN)
        counts = jobs.counts(session)
    return render(request, "jobs.html", failed=failed, counts=counts)


@pages.post("/jobs/{job_id}/retry")
def retry_job(job_id: str, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Queue a failed job again with a fresh set of attempts."""
    authorize(vault.sessions, current.principal, actions.JOB_MANAGE, _JOBS)
    with vault.sessions.begin() as session:
        jobs.retry(session, job_id, now=vault.clock())
    return RedirectResponse("/jobs", status_code=303)


@pages.get("/keys")
def key_status(request: Request, vault: VaultDep, current: Signed) -> Response:
    """Key status (`key.manage`): the current master key version, the versions the keyring
    keeps and those item keys still use, pending retirements, the ledger's log key, and the
    token-signing keys (ids and dates: the public record, never a private key)."""
    authorize(vault.sessions, current.principal, actions.KEY_MANAGE, _KEYS)
    with vault.sessions() as session:
        master = keystate.current(session)
        in_use = sorted(keystate.versions_in_use(session, vault.keyring))
        item_keys = session.scalar(select(func.count()).select_from(ItemKey)) or 0
        signing = token_keys.history(session, TOKEN_KEYS_SHOWN)
    retiring = [
        record
        for record in approvals.list_approvals(vault, current.principal, approvals.PENDING)
        if record.kind == approval_kinds.RETIRE_KEYS
    ]
    return render(
        request,
        "keys.html",
        master=master,
        kept=vault.keyring.versions,
        in_use=in_use,
        item_keys=item_keys,
        retiring=retiring,
        log_key=vault.checkpointer.verifier_key(),
        signing=signing,
        now=vault.clock(),
    )
