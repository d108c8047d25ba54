"""The commission's pages: ask for an export (purpose and legal basis, sealed), follow its
state, download it (streamed); through the same use cases as `/v1/exports`."""

from __future__ import annotations

import base64
from typing import Final

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vault import exports
from vault.api.deps import VaultDep
from vault.cases import list_cases
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
    """The request form: a case, the purpose and the legal basis."""
    cases = list_cases(vault, current.principal)
    return render(request, "export_new.html", cases=cases)


@pages.post("/exports")
def export_request(vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Ask for an export (sealed purpose and legal basis); it waits for a custodian."""
    commission = str(form.get("commission", "")).strip() or None
    asked = exports.request(
        vault,
        current.principal,
        exports.ExportRequest(
            case_id=str(form.get("case", "")),
            purpose=str(form.get("purpose", "")),
            legal_basis=str(form.get("legal_basis", "")),
            commission=commission,
        ),
    )
    return RedirectResponse(f"/exports/{asked.id}", status_code=303)


@pages.get("/exports/{export_id}")
def export_page(export_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """One export: its request opened for those who may see it, its state, its download."""
    view = exports.detail(vault, current.principal, export_id)
    return render(request, "export.html", export=view, state=_state(request, view))


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
