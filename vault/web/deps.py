"""Dependencies of the web pages: the signed-in session (`Signed`) and a checked form
(`CheckedForm`): one way into every page, as `CurrentPrincipal` is for the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from vault import ledger
from vault.api.deps import VaultDep
from vault.parts import Vault
from vault.web import forms, sessions
from vault.web.sessions import Current


class SignInNeeded(Exception):
    """The page needs a signed-in session and the request has none (`expired`: it timed out)."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in needed")
        self.expired = expired


class Redirect(Exception):
    """Send the browser to `location` (a path of this site) instead of the page asked for."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


async def any_session(request: Request, vault: VaultDep) -> Current:
    """Return the request's live session, whatever its state. Raises `SignInNeeded`."""
    try:
        current = await run_in_threadpool(
            sessions.resolve, vault, request.cookies.get(forms.SESSION_COOKIE)
        )
    except sessions.Ended as ended:
        raise SignInNeeded(ended.expired) from None
    request.state.web_session = current
    return current


async def signed_in(current: Annotated[Current, Depends(any_session)]) -> Current:
    """Return the request's signed-in (active) session; one half-way through sign-in is sent
    to the step it still owes."""
    if current.state == sessions.SECOND_FACTOR:
        raise Redirect("/sign-in/code")
    if current.state == sessions.ENROL:
        raise Redirect("/account/second-factor")
    return current


Signed = Annotated[Current, Depends(signed_in)]
AnySession = Annotated[Current, Depends(any_session)]


def record_refused_form(vault: Vault, actor: str, reason: str) -> None:
    """Record a refused form (promise 3: a denied attempt is an event)."""
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=actor,
            action=ledger.actions.ACCESS_DENIED,
            details={"attempted": "web form", "reason": reason},
        )


async def checked_form(request: Request, vault: VaultDep, current: AnySession) -> FormData:
    """Return the posted form once its CSRF token is the session's. Raises `FormRefused`
    (after an `access denied` entry naming the account)."""
    form = await forms.read_form(request)
    try:
        forms.check_token(current.csrf, form.get(forms.CSRF_FIELD))
    except forms.FormRefused:
        await run_in_threadpool(
            record_refused_form, vault, current.name, "missing or wrong CSRF token"
        )
        raise
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]
