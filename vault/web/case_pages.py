"""Cases and their grants: the cases one may see, a new case, and (for those the policy lets
grant and revoke: custodians) the roles granted on a case, a grant, a revocation.

The same use cases as `/v1/cases` and `/v1/cases/{id}/grants` (`vault.cases`, `vault.grants`),
so the same decisions and ledger entries (`grant`, `revocation`). Case names are sealed at rest
and shown on these pages only, never in a URL or a title.

A legal hold on the whole case (`vault.shred.hold_case`) holds each item of the case through
the single hold's path, one `legal hold` entry per item held; items deposited later are not
held.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from vault import cases, grants, shred
from vault.api.deps import VaultDep
from vault.errors import BadField, Conflict, UnknownAccount
from vault.web.account_pages import ROLE_NAMES
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import N_, render, translate

pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

BAD_CASE_NAME: Final = N_("A case name is 1 to 500 characters. Nothing was changed.")
BAD_CASE_ROLE: Final = N_("Choose one of the case roles. Nothing was changed.")
NO_ACCOUNT: Final = N_("There is no such account, or it is disabled. Nothing was changed.")
GRANTED_ALREADY: Final = N_("This account has this role on the case already. Nothing was changed.")
BAD_HOLD_REASON: Final = N_(
    "Say why the case is held, in at most 2000 characters. Nothing was changed."
)
CASE_HELD: Final = N_(
    "Items put under legal hold now: %(held)s. Under legal hold already: %(already)s. "
    "Crypto-shredded, left alone: %(shredded)s."
)


def _roles(request: Request) -> list[tuple[str, str]]:
    return [(role, translate(request, ROLE_NAMES.get(role, role))) for role in cases.CASE_ROLES]


def _cases_page(
    request: Request, vault: VaultDep, current: Signed, message: str | None, status: int = 200
) -> Response:
    listed = cases.list_cases(vault, current.principal)
    shown = translate(request, message) if message else None
    return render(request, "cases.html", status=status, cases=listed, message=shown)


def _case_page(
    request: Request,
    vault: VaultDep,
    current: Signed,
    case_id: str,
    message: str | None,
    status: int = 200,
    notice: str | None = None,
) -> Response:
    # The grants first: `list_grants` decides (an unknown or hidden case is "not found").
    granted = grants.list_grants(vault, current.principal, case_id)
    named = [c for c in cases.list_cases(vault, current.principal) if c.id == case_id]
    roles = _roles(request)
    return render(
        request,
        "case.html",
        status=status,
        case_id=case_id,
        case=named[0] if named else None,
        grants=granted,
        roles=roles,
        role_names=dict(roles),
        message=translate(request, message) if message else None,
        notice=notice,
    )


@pages.get("/cases")
def case_list(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The cases one may see, and a form that opens a new one."""
    return _cases_page(request, vault, current, None)


@pages.post("/cases")
def new_case(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Open a case (its name sealed at rest), then show it."""
    try:
        case = cases.create_case(vault, current.principal, str(form.get("name", "")))
    except BadField:
        return _cases_page(request, vault, current, BAD_CASE_NAME, 422)
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


@pages.get("/cases/{case_id}")
def case(case_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """One case: its name, the roles granted on it, and the forms to grant and revoke."""
    return _case_page(request, vault, current, case_id, None)


@pages.post("/cases/{case_id}/grants")
def grant(
    case_id: str, request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Grant an account a role on the case; effective on its next request."""
    user, role = str(form.get("user", "")).strip(), str(form.get("role", ""))
    try:
        cases.grant(vault, current.principal, case_id, user, role)
    except BadField:
        return _case_page(request, vault, current, case_id, BAD_CASE_ROLE, 422)
    except UnknownAccount:
        # Raised only once the policy allowed the grant on this case (`cases.grant` decides
        # first), so saying so tells nothing about a case the caller may not see.
        return _case_page(request, vault, current, case_id, NO_ACCOUNT, 404)
    except Conflict:
        return _case_page(request, vault, current, case_id, GRANTED_ALREADY, 409)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@pages.post("/cases/{case_id}/grants/revoke")
def revoke(
    case_id: str, request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Revoke one role of an account on the case; effective on its next request."""
    user, role = str(form.get("user", "")), str(form.get("role", ""))
    grants.revoke(vault, current.principal, case_id, user, role or None)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@pages.post("/cases/{case_id}/hold")
def hold_case(
    case_id: str, request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Put every item of the case under legal hold with one reason (sealed); say how many.

    Sending it twice holds nothing more: the items are under hold already."""
    try:
        done = shred.hold_case(vault, current.principal, case_id, str(form.get("reason", "")))
    except BadField:
        return _case_page(request, vault, current, case_id, BAD_HOLD_REASON, 422)
    counts = {"held": len(done.held), "already": done.already, "shredded": done.shredded}
    notice = translate(request, CASE_HELD) % counts
    return _case_page(request, vault, current, case_id, None, notice=notice)
