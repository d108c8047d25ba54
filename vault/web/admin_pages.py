"""The custodian's account pages: list accounts, add one, change a role, disable or enable,
issue a one-time set-password link, turn off a lost second factor.

Each form calls the use case of `/v1/users/...` or `tvault users ...` (`vault.credentials`,
`vault.account_admin`), which asks the policy (`user.manage`) and writes the same ledger entry.
The account a form acts on travels in its body, never in the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from vault import account_admin, credentials
from vault.api.deps import VaultDep
from vault.domain import ROLES
from vault.errors import BadField, Conflict, NotFound
from vault.passwords import WEB
from vault.web.account_pages import ROLE_NAMES
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import N_, render, translate

pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

BAD_NAME: Final = N_(
    "An account name is 1 to 64 of a-z, 0-9, dot, underscore and hyphen, starting with a letter "
    "or digit. Nothing was changed."
)
BAD_ROLE: Final = N_("Choose one of the roles. Nothing was changed.")
TAKEN: Final = N_("An account with this name exists already. Nothing was changed.")
NO_ACCOUNT: Final = N_("There is no such account, or it is disabled. Nothing was changed.")
ONESELF: Final = N_(
    "You cannot disable your own account or change its role: another custodian can. "
    "Nothing was changed."
)
NO_SECOND_FACTOR: Final = N_("This account has no second factor: nothing was changed.")


def _users_page(
    request: Request, vault: VaultDep, current: Signed, message: str | None, status: int = 200
) -> Response:
    accounts = account_admin.accounts_by(vault, current.principal)
    roles = [(role, translate(request, ROLE_NAMES.get(role, role))) for role in ROLES]
    return render(
        request,
        "users.html",
        status=status,
        accounts=accounts,
        roles=roles,
        role_names=dict(roles),
        message=translate(request, message) if message else None,
    )


def _name(form: CheckedForm) -> str:
    return str(form.get("name", "")).strip()


def _act(
    request: Request,
    vault: VaultDep,
    current: Signed,
    change: Callable[[], object],
    conflict: str = ONESELF,
) -> Response:
    """Run `change`, then send the browser back to the account list; or answer the list saying
    what went wrong (`conflict` for a `Conflict`): the use case changed nothing then. A refusal
    by the policy propagates to its error page."""
    try:
        change()
    except BadField as exc:
        message = BAD_ROLE if exc.field == "role" else BAD_NAME
        return _users_page(request, vault, current, message, 422)
    except NotFound:
        return _users_page(request, vault, current, NO_ACCOUNT, 404)
    except Conflict:
        return _users_page(request, vault, current, conflict, 409)
    return RedirectResponse("/users", status_code=303)


@pages.get("/users")
def users(request: Request, vault: VaultDep, current: Signed) -> Response:
    """Every account with its role and state, and the forms that change them."""
    return _users_page(request, vault, current, None)


@pages.post("/users")
def add_user(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Add an account with a role (no password yet: a set-password link gives it one)."""
    name, role = _name(form), str(form.get("role", ""))
    return _act(
        request,
        vault,
        current,
        lambda: account_admin.add_by(vault, current.principal, name, role, via=WEB),
        conflict=TAKEN,
    )


@pages.post("/users/role")
def change_role(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Give an account another role; its sessions and tokens end (a new generation)."""
    name, role = _name(form), str(form.get("role", ""))
    return _act(
        request,
        vault,
        current,
        lambda: credentials.change_role_by(vault, current.principal, name, role, via=WEB),
    )


@pages.post("/users/disable")
def disable(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Disable an account: its sessions and tokens are refused from their next request on."""
    name = _name(form)
    return _act(
        request,
        vault,
        current,
        lambda: credentials.set_disabled_by(vault, current.principal, name, True, via=WEB),
    )


@pages.post("/users/enable")
def enable(request: Request, vault: VaultDep, current: Signed, form: CheckedForm) -> Response:
    """Enable an account again; what it held before it was disabled stays refused."""
    name = _name(form)
    return _act(
        request,
        vault,
        current,
        lambda: credentials.set_disabled_by(vault, current.principal, name, False, via=WEB),
    )


@pages.post("/users/link")
def password_link(
    request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Issue a one-time set-password link, shown on this answer only (as `tvault users link`)."""
    name = _name(form)
    try:
        _, secret, expires = account_admin.link_by(vault, current.principal, name, via=WEB)
    except NotFound:
        return _users_page(request, vault, current, NO_ACCOUNT, 404)
    link = f"{str(request.base_url).rstrip('/')}/set-password/{secret}"
    return render(request, "user_link.html", account=name, link=link, expires=expires)


@pages.post("/users/second-factor-reset")
def reset_second_factor(
    request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Turn off an account's second factor so that it sets one up again."""
    name = _name(form)
    try:
        was_on = account_admin.reset_second_factor_by(vault, current.principal, name, via=WEB)
    except NotFound:
        return _users_page(request, vault, current, NO_ACCOUNT, 404)
    if not was_on:
        return _users_page(request, vault, current, NO_SECOND_FACTOR, 409)
    return RedirectResponse("/users", status_code=303)
