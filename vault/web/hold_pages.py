"""Legal holds for custodians: the items under hold, a form that puts an item under hold with
its reason, and a button that asks to lift one, which another custodian approves in the
approvals queue (the two-person rule).

The same use cases as `PUT /v1/items/{id}/hold` and `DELETE /v1/items/{id}/hold`
(`vault.shred.set_hold`, `vault.approval_kinds.request_lift_hold`), so the same decisions and
`legal hold` / `approval request` entries. Item ids travel in the forms' bodies.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from vault import approval_kinds, shred
from vault.api.deps import VaultDep
from vault.errors import BadField, Conflict
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import N_, render, translate

pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

BAD_REASON: Final = N_("Say why the item is held, in at most 2000 characters. Nothing was changed.")
HELD_ALREADY: Final = N_("This item is under legal hold already. Nothing was changed.")
LIFT_ASKED: Final = N_(
    "This item is not under legal hold, or lifting its hold waits in the approvals queue "
    "already. Nothing was changed."
)


def _holds_page(
    request: Request, vault: VaultDep, current: Signed, message: str | None, status: int = 200
) -> Response:
    held = shred.list_holds(vault, current.principal)
    shown = translate(request, message) if message else None
    return render(request, "holds.html", status=status, holds=held, message=shown)


def _item(form: CheckedForm) -> str:
    return str(form.get("item", "")).strip()


@pages.get("/holds")
def holds(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The items under legal hold and the forms to hold one and to ask to lift one."""
    return _holds_page(request, vault, current, None)


@pages.post("/holds")
def hold(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Put an item under legal hold (it cannot be shredded while held), with the reason sealed."""
    try:
        changed = shred.set_hold(
            vault, current.principal, _item(form), True, str(form.get("reason", ""))
        )
    except BadField:
        return _holds_page(request, vault, current, BAD_REASON, 422)
    if not changed:
        return _holds_page(request, vault, current, HELD_ALREADY, 409)
    return RedirectResponse("/holds", status_code=303)


@pages.post("/holds/lift")
def lift(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Ask to lift an item's hold: another custodian approves it in the approvals queue."""
    try:
        record = approval_kinds.request_lift_hold(vault, current.principal, _item(form))
    except Conflict:
        return _holds_page(request, vault, current, LIFT_ASKED, 409)
    return RedirectResponse(f"/approvals/{record.id}", status_code=303)
