"""Cookies and forms of the web pages: the session cookie, CSRF tokens, reading a posted form.

Every form carries a CSRF token (synchronizer token pattern, OWASP CSRF cheat sheet): a signed-in
session's forms carry the session's own token; the forms a signed-out visitor sends (sign-in,
set-password) carry a random value that must equal a cookie of ours (double submit), which a
page of another site can neither read nor set. SameSite=Strict cookies are a second wall.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from fastapi import Request, Response
from starlette.datastructures import FormData

from vault.errors import BadField

SESSION_COOKIE: Final = "tvault_session"
FORM_COOKIE: Final = "tvault_form"
LANGUAGE_COOKIE: Final = "tvault_lang"
CSRF_FIELD: Final = "csrf"
MAX_FORM_BYTES: Final = 64 * 1024  # a urlencoded form of ours; the deposit form streams


class FormRefused(Exception):
    """A form came without the right CSRF token (or from a page of another site)."""


def _secure(request: Request) -> bool:
    # Behind TLS (uvicorn sets the scheme from a trusted proxy's X-Forwarded-Proto only).
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """Set cookie `name`: HttpOnly, SameSite=Strict, Secure behind TLS, for the whole site,
    for the browser's session only (the server decides when a session ends)."""
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=_secure(request), path="/"
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    """Remove cookie `name` from the browser."""
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def anon_csrf(request: Request) -> str:
    """Return the CSRF value of a signed-out visitor's forms (set as a cookie when rendered)."""
    value = request.cookies.get(FORM_COOKIE)
    if not value or len(value) > 64:
        value = getattr(request.state, "set_anon_csrf", None) or secrets.token_urlsafe(24)
        request.state.set_anon_csrf = value
    request.state.anon_csrf = value
    return value


def set_anon_cookie(request: Request, response: Response, value: str) -> None:
    """Give the browser the double-submit cookie of `anon_csrf`."""
    set_cookie(request, response, FORM_COOKIE, value)


async def read_form(request: Request) -> FormData:
    """Return a posted urlencoded form of at most `MAX_FORM_BYTES`.

    Raises `BadField` for another content type (a multipart body would be spooled to disk by
    Starlette, in the clear) or a larger body.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadField("content-type", "a form of this site")
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise BadField("form", f"at most {MAX_FORM_BYTES} bytes")
    return await request.form(max_files=0, max_fields=200)


def check_token(expected: str | None, given: object) -> None:
    """Raise `FormRefused` unless `given` equals the non-empty `expected` (constant time)."""
    if not expected or not isinstance(given, str) or not given:
        raise FormRefused
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise FormRefused


def check_anon(request: Request, form: FormData) -> None:
    """Check a signed-out visitor's form against its double-submit cookie."""
    check_token(request.cookies.get(FORM_COOKIE), form.get(CSRF_FIELD))
