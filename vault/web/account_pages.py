"""The start page and the account pages: sign out, change password, second factor."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from vault import passwords
from vault.api.deps import VaultDep
from vault.errors import BadField, Forbidden, Unauthenticated
from vault.web import forms, sessions
from vault.web.deps import (
    AnySession,
    CheckedForm,
    Signed,
    any_session,
    record_refused_form,
    signed_in,
)
from vault.web.public_pages import _budgets, _record_failed, _wait, limiter
from vault.web.render import N_, render, translate

# Every page here needs a signed-in session (promise 4: deny by default) ...
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])
# ... but setting up a second factor, which a session half-way through sign-in may owe.
halfway = APIRouter(include_in_schema=False, dependencies=[Depends(any_session)])

ROLE_NAMES: Final = {
    "therapist": N_("therapist"),
    "lawyer": N_("lawyer"),
    "advocate": N_("advocate"),
    "commission": N_("commission"),
    "custodian": N_("custodian"),
    "auditor": N_("auditor"),
}


@pages.get("/")
def home(request: Request, current: Signed) -> Response:
    """The start page: what the signed-in account can do here."""
    role = translate(request, ROLE_NAMES.get(current.role, current.role))
    return render(request, "home.html", role_name=role)


@pages.post("/sign-out")
async def sign_out(request: Request, vault: VaultDep, form: CheckedForm) -> Response:
    """End the session on the server (a `sign out` entry); the cookie goes too."""
    await run_in_threadpool(
        sessions.close, vault, request.cookies.get(forms.SESSION_COOKIE), "signed out"
    )
    response = RedirectResponse("/sign-in", status_code=303)
    forms.clear_cookie(request, response, forms.SESSION_COOKIE)
    return response


def _required(vault_setting: str, role: str) -> bool:
    return vault_setting == "custodian" and role == "custodian"


def _account_page(
    request: Request, vault: VaultDep, current: sessions.Current, **extra: Any
) -> Response:
    return render(
        request,
        "account.html",
        second_factor=passwords.has_totp(vault, current.account_id),
        required=_required(vault.settings.require_2fa, current.role),
        **extra,
    )


@pages.get("/account")
def account(request: Request, vault: VaultDep, current: Signed) -> Response:
    """Password and second factor of the signed-in account."""
    return _account_page(request, vault, current)


async def _check_current(
    request: Request, vault: VaultDep, current: sessions.Current, password: str
) -> bool:
    _wait(request, current.name)
    try:
        await run_in_threadpool(passwords.check_password, vault, current.name, password)
    except Unauthenticated:
        for key in _budgets(request, current.name):
            limiter(request).spend(key)
        await run_in_threadpool(_record_failed, vault, current.name, "wrong current password")
        return False
    return True


@pages.post("/account/password")
async def change_password(
    request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Change the password (the current one first); a `password change` entry."""
    new, again = str(form.get("password", "")), str(form.get("again", ""))
    problem = None
    if not await _check_current(request, vault, current, str(form.get("current", ""))):
        problem = N_("The current password is not right. Nothing was changed.")
    elif new != again:
        problem = N_("The two passwords differ. Nothing was changed.")
    else:
        try:
            await run_in_threadpool(
                lambda: passwords.set_password(
                    vault, current.name, new, actor=current.principal, via=passwords.WEB
                )
            )
        except BadField:
            problem = N_("The password must have 10 to 256 characters. Nothing was changed.")
    if problem is not None:
        return _account_page(request, vault, current, message=translate(request, problem))
    message = translate(request, N_("Your password was changed."))
    return _account_page(request, vault, current, message=message)


@halfway.get("/account/second-factor")
def second_factor_form(request: Request, vault: VaultDep, current: AnySession) -> Response:
    """Set up a TOTP second factor: a fresh key to type into an authenticator app."""
    if current.state == sessions.SECOND_FACTOR:
        return RedirectResponse("/sign-in/code", status_code=303)
    secret = passwords.new_totp_secret()
    return render(
        request,
        "second_factor.html",
        secret=secret,
        uri=passwords.provisioning_uri(secret, current.name),
        required=current.state == sessions.ENROL,
    )


@halfway.post("/account/second-factor")
async def second_factor(
    request: Request, vault: VaultDep, current: AnySession, form: CheckedForm
) -> Response:
    """Turn the second factor on once a code proves the app has the key."""
    if current.state == sessions.SECOND_FACTOR:
        return RedirectResponse("/sign-in/code", status_code=303)
    secret, code = str(form.get("secret", "")), str(form.get("code", ""))
    if len(secret) != 32 or not secret.isalnum():
        raise BadField("code", "malformed key")
    try:
        await run_in_threadpool(lambda: passwords.enable_totp(vault, current.name, secret, code))
    except BadField:
        return render(
            request,
            "second_factor.html",
            status=422,
            secret=secret,
            uri=passwords.provisioning_uri(secret, current.name),
            required=current.state == sessions.ENROL,
            message=translate(request, N_("This code does not match. Try the next one.")),
        )
    response = RedirectResponse("/account", status_code=303)
    if current.state == sessions.ENROL:
        fresh = await run_in_threadpool(
            lambda: sessions.activate(vault, current.id, second_factor=True)
        )
        response = RedirectResponse("/", status_code=303)
        forms.set_cookie(request, response, forms.SESSION_COOKIE, fresh)
    return response


@pages.post("/account/second-factor/off")
async def second_factor_off(
    request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Turn the second factor off (the password first); refused where it is required."""
    if _required(vault.settings.require_2fa, current.role):
        reason = "second factor required for the role"
        await run_in_threadpool(record_refused_form, vault, current.name, reason)
        raise Forbidden("a second factor is required for custodians")
    if not await _check_current(request, vault, current, str(form.get("current", ""))):
        message = N_("The current password is not right. Nothing was changed.")
        return _account_page(request, vault, current, message=translate(request, message))
    await run_in_threadpool(
        lambda: passwords.disable_totp(
            vault, current.name, actor=current.principal, via=passwords.WEB
        )
    )
    return RedirectResponse("/account", status_code=303)
