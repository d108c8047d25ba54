"""Errors on web pages: a page in the reader's language instead of a problem document.

Messages are fixed phrases from the catalogs, chosen by the error's kind (and, for a bad field,
the field's name); never the text a user typed, which may name a survivor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException

from vault.api import problems
from vault.errors import BadField, TooLarge, TooManyRequests, VaultError
from vault.ranges import RangeNotSatisfiable
from vault.web import forms
from vault.web.deps import Redirect, SignInNeeded
from vault.web.headers import is_page
from vault.web.render import N_, render, translate

log = logging.getLogger(__name__)

# What each kind of failure tells the reader (translated where shown).
MESSAGES: Final = {
    "not-found": N_("There is nothing here, or you may not see it."),
    "forbidden": N_("You may not do this."),
    "unauthenticated": N_("Sign in first."),
    "too-large": N_("The file is larger than this vault accepts. Nothing was stored."),
    "conflict": N_("This already exists."),
    "too-many-requests": N_("Too many failed attempts. Wait a few minutes, then try again."),
    "unavailable": N_("The vault cannot do this right now. Nothing was changed; try again later."),
    "bad-field": N_("Some of what was sent is not valid. Nothing was stored."),
    "misplaced-field": N_("Some of what was sent is not valid. Nothing was stored."),
    "range-not-satisfiable": N_("The part of the file asked for lies past its end."),
    "error": N_("Something went wrong. Nothing was changed."),
}
# The names of form fields as a reader knows them.
FIELDS: Final = {
    "case": N_("Case"),
    "kind": N_("Kind of document"),
    "title": N_("Title"),
    "language": N_("Language"),
    "consent": N_("Consent"),
    "tags": N_("Tags"),
    "file": N_("File"),
    "password": N_("Password"),
    "code": N_("Code"),
    "q": N_("Search"),
    "tag": N_("Tags"),
    "date_from": N_("Deposited from"),
    "date_to": N_("Deposited until"),
    "reason": N_("Reason for denying"),
    "purpose": N_("Purpose"),
    "legal_basis": N_("Legal basis"),
    "commission": N_("Commission (account name)"),
    "kinds": N_("Kinds of document"),
    "query": N_("Words the items must contain"),
}


def message_for(request: Request, exc: VaultError) -> str:
    """Return what the reader is told about `exc`, in their language."""
    text = translate(request, MESSAGES.get(exc.code, MESSAGES["error"]))
    if isinstance(exc, BadField) and exc.field in FIELDS:
        text += " " + translate(request, N_("Check this field: %(field)s.")) % {
            "field": translate(request, FIELDS[exc.field])
        }
    return text


STATUS: Final = dict(problems.STATUS)


def error_page(request: Request, status: int, message: str) -> Response:
    """Return the error page with `message` (already translated)."""
    return render(request, "error.html", status=status, message=message)


def sign_in_page(request: Request, message: str | None, status: int = 401) -> Response:
    """Return the sign-in page, saying `message` (already translated)."""
    csrf = forms.anon_csrf(request)
    request.state.web_session = None
    vault = request.app.state.vault
    providers = [
        issuer.name or issuer.issuer for issuer in vault.settings.oidc_issuers if issuer.web_sign_in
    ]
    response = render(
        request, "sign_in.html", status=status, message=message, form_csrf=csrf, providers=providers
    )
    forms.clear_cookie(request, response, forms.SESSION_COOKIE)
    return response


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _for_pages(page: Handler, api: Callable[..., Awaitable[Response]]) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_page(request.url.path):
            return await page(request, exc)
        return await api(request, exc)

    return handle


async def _vault_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultError)
    status = STATUS.get(exc.code, 400)
    response = error_page(request, status, message_for(request, exc))
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, RangeNotSatisfiable):
        # RFC 9110 15.5.17: the length, for the client to ask again within it.
        response.headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, TooLarge):
        # The rest of the body is not read: the connection closes after this answer.
        response.headers["Connection"] = "close"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    key = "not-found" if exc.status_code in (404, 405) else "error"
    return error_page(request, exc.status_code, translate(request, MESSAGES[key]))


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_page(request, 422, translate(request, MESSAGES["bad-field"]))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The type only: an exception message may quote data promise 1 keeps out of logs.
    log.error("internal error on a page: %s", type(exc).__name__)
    return error_page(request, 500, translate(request, MESSAGES["error"]))


async def _sign_in_needed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    message = (
        N_("Your session ended after a time without use. Sign in again; nothing was changed.")
        if exc.expired
        else N_("Sign in first.")
    )
    return sign_in_page(request, translate(request, message))


async def _form_refused(request: Request, exc: Exception) -> Response:
    message = N_(
        "This form was not accepted: it is too old or did not come from this site. "
        "Nothing was changed. Reload the page and send it again."
    )
    return error_page(request, 403, translate(request, message))


async def _redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    return RedirectResponse(exc.location, status_code=303)


def install(app: FastAPI) -> None:
    """Answer errors on web pages with pages; the API keeps its problem documents."""
    for kind, page in (
        (VaultError, _vault_error),
        (HTTPException, _http_error),
        (RequestValidationError, _validation_error),
        (Exception, _unexpected),
    ):
        app.add_exception_handler(kind, _for_pages(page, problems.HANDLERS[kind]))
    app.add_exception_handler(SignInNeeded, _sign_in_needed)
    app.add_exception_handler(forms.FormRefused, _form_refused)
    app.add_exception_handler(Redirect, _redirect)
