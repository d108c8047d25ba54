"""The commission's pages: ask for an export (purpose and legal basis sealed; optional filters:
kinds, deposit dates, words), follow its state, download it (streamed), ask again for an ended
one; through the same use cases as `/v1/exports`."""

from __future__ import annotations

import base64
from datetime import date
from typing import Final

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vault import exports
from vault.api.deps import VaultDep
from vault.cases import list_cases
from vault.domain import KINDS
from vault.errors import BadField
from vault.web.deposit_pages import KIND_NAMES
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import N_, render, translate

# Every page here needs a signed-in session; the policy decides who may ask and who may see.
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

EXPORT_STATES: Final = {
    exports.REQUESTED: N_("waiting for a custodian's approval"),
    exports.DENIED: N_("denied"),
    exports.QUEUED: N_("approved, waiting to be built"),
    exports.BUILDING: N_("being built"),
    exports.READY: N_("ready to download"),
    exports.FAILED: N_("the build failed"),
    exports.REVOKED: N_("revoked"),
    exports.EXPIRED: N_("expired"),
}
# The states after which an export may be asked for again (`exports.rebuild`).
ENDED: Final = (exports.REVOKED, exports.EXPIRED, exports.FAILED, exports.DENIED)


def _state(request: Request, view: exports.ExportView) -> str:
    return translate(request, EXPORT_STATES.get(view.state, view.state))


@pages.get("/exports")
def export_list(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The exports one asked for or receives (custodians: all), newest first."""
    views = exports.list_exports(vault, current.principal)
    rows = [(view, _state(request, view)) for view in views]
    return render(request, "exports.html", rows=rows)


@pages.get("/exports/new")
def export_form(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The request form: a case, the purpose and the legal basis, and optional filters."""
    cases = list_cases(vault, current.principal)
    kinds = [(kind, translate(request, KIND_NAMES[kind])) for kind in KINDS]
    return render(request, "export_new.html", cases=cases, kinds=kinds)


def _date(form: CheckedForm, name: str) -> date | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadField(name, "a date as YYYY-MM-DD") from None


@pages.post("/exports")
def export_request(vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Ask for an export (sealed purpose and legal basis); it waits for a custodian."""
    commission = str(form.get("commission", "")).strip() or None
    query = str(form.get("query", "")).strip() or None
    kinds = tuple(sorted({str(kind) for kind in form.getlist("kinds")}))
    asked = exports.request(
        vault,
        current.principal,
        exports.ExportRequest(
            case_id=str(form.get("case", "")),
            purpose=str(form.get("purpose", "")),
            legal_basis=str(form.get("legal_basis", "")),
            commission=commission,
            query=query,
            kinds=kinds,
            date_from=_date(form, "date_from"),
            date_to=_date(form, "date_to"),
        ),
    )
    return RedirectResponse(f"/exports/{asked.id}", status_code=303)


@pages.get("/exports/{export_id}")
def export_page(export_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """One export: its request opened for those who may see it, its state, its download."""
    view = exports.detail(vault, current.principal, export_id)
    kinds = [translate(request, KIND_NAMES.get(kind, kind)) for kind in view.kinds]
    return render(
        request,
        "export.html",
        export=view,
        state=_state(request, view),
        kinds=kinds,
        ended=view.state in ENDED,
    )


@pages.post("/exports/{export_id}/rebuild")
def export_rebuild(export_id: str, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Ask again for an ended export (revoked, expired, failed, denied): a new export with the
    same case, commission, filters, purpose and legal basis, waiting for a new approval."""
    asked = exports.rebuild(vault, current.principal, export_id)
    return RedirectResponse(f"/exports/{asked.id}", status_code=303)


@pages.get("/exports/{export_id}/download")
async def export_download(
    export_id: str,
    vault: VaultDep,
    current: Signed,
    range_: str | None = Header(default=None, alias="Range", max_length=200),
) -> Response:
    """The sealed export (an age file for the commission's keys), streamed; a custody entry."""
    got = await run_in_threadpool(exports.download, vault, current.principal, export_id, range_)
    digest = base64.b64encode(bytes.fromhex(got.sha256)).decode("ascii")
    headers = {
        "Content-Length": str(got.end - got.start + 1),
        "Accept-Ranges": "bytes",
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Disposition": f'attachment; filename="{export_id}.tar.age"',
    }
    status = 200
    if got.partial:
        status = 206
        headers["Content-Range"] = f"bytes {got.start}-{got.end}/{got.total}"
    return StreamingResponse(
        got.chunks, status_code=status, media_type="application/octet-stream", headers=headers
    )
