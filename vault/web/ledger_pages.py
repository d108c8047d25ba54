"""The auditor's pages and the custody timeline: ledger entries (sealed details stay sealed),
checkpoints, and an item's entries with a check of each one's inclusion proof."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from policies import Resource, actions, kinds
from vault import custody_timeline, ledger
from vault.access import authorize
from vault.api.deps import VaultDep
from vault.ledger import checkpoints
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import N_, render, translate

# Every page here needs a signed-in session; the policy decides who reads what.
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

_LEDGER = Resource(kind=kinds.LEDGER)
PAGE_SIZE: Final = 100
OUTCOMES: Final = {
    custody_timeline.PROVEN: N_("proven: in the signed checkpoint"),
    custody_timeline.NOT_YET: N_("not yet in a signed checkpoint"),
    custody_timeline.FAILED: N_("NOT proven"),
}
# Why the page's script left the check to the server (the `browser` field of its form).
BROWSER_REASONS: Final = frozenset({"no-ed25519", "no-proofs"})


@pages.get("/ledger")
def ledger_page(
    request: Request, vault: VaultDep, current: Signed, start: int | None = None
) -> Response:
    """Ledger entries, newest page first; `start` (a number) pages back."""
    authorize(vault.sessions, current.principal, actions.LEDGER_READ, _LEDGER)
    with vault.sessions() as session:
        total = ledger.size(session)
        first = max(0, total - PAGE_SIZE) if start is None else max(0, min(start, total))
        shown = list(ledger.entries(session, first, first + PAGE_SIZE))
    return render(
        request,
        "ledger.html",
        entries=shown,
        total=total,
        earlier=max(0, first - PAGE_SIZE) if first > 0 else None,
        later=first + PAGE_SIZE if first + PAGE_SIZE < total else None,
    )


@pages.get("/ledger/checkpoints")
def checkpoint_page(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The signed checkpoints, newest first, and the log key to check them with."""
    authorize(vault.sessions, current.principal, actions.LEDGER_PROOF, _LEDGER)
    with vault.sessions() as session:
        signed = sorted(checkpoints.all_checkpoints(session), key=lambda c: -c.size)
        total = ledger.size(session)
    log = vault.checkpointer
    return render(
        request,
        "checkpoints.html",
        checkpoints=signed,
        total=total,
        origin=log.origin,
        log_key=log.verifier_key(),
    )


@pages.post("/ledger/checkpoints")
def sign_checkpoint(vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Sign a checkpoint of every committed entry now (auditors)."""
    authorize(vault.sessions, current.principal, actions.LEDGER_VERIFY, _LEDGER)
    vault.checkpointer.checkpoint(now=vault.clock())
    return RedirectResponse("/ledger/checkpoints", status_code=303)


def _timeline(
    request: Request,
    vault: VaultDep,
    current: Signed,
    item_id: str,
    check: custody_timeline.CustodyCheck | None,
    browser: str | None = None,
) -> Response:
    shown = custody_timeline.entries(vault, current.principal, item_id)
    outcomes = {}
    if check is not None:
        outcomes = {
            e.seq: (e.outcome, translate(request, OUTCOMES[e.outcome])) for e in check.entries
        }
    return render(
        request,
        "custody.html",
        item_id=item_id,
        entries=shown,
        check=check,
        outcomes=outcomes,
        browser=browser if browser in BROWSER_REASONS else None,
    )


@pages.get("/items/{item_id}/custody")
def custody(item_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """An item's custody timeline: the ledger entries about it that the viewer may read."""
    return _timeline(request, vault, current, item_id, None)


@pages.post("/items/{item_id}/custody/verify")
def verify_custody(
    item_id: str, request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Check each entry's inclusion proof against the latest signed checkpoint and say so."""
    check = custody_timeline.verify(vault, current.principal, item_id)
    # The page's script sends `browser` when it fell back to this check (no Ed25519 in the
    # browser's WebCrypto, or the proofs could not be fetched), so the result page says so.
    browser = form.get("browser")
    return _timeline(
        request, vault, current, item_id, check, browser if isinstance(browser, str) else None
    )


@pages.get("/items/{item_id}/custody/proofs")
def custody_proofs(item_id: str, vault: VaultDep, current: Signed) -> Response:
    """What the custody page's script checks inside the browser (`static/custody.js`): the
    latest signed checkpoint as signed, the log key, each entry and its inclusion proof.

    The same use case, policy and refusal as the timeline itself (`custody_timeline.entries`).
    """
    gathered = custody_timeline.proofs(vault, current.principal, item_id)
    return JSONResponse(gathered.to_json(item_id))
