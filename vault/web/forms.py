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
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.datastructures import FormData

from vault.errors import BadField, TooLarge
from vault.multipart import PartHeaders

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


class _Parts(PartHeaders):
    """Callbacks of the streaming parser: each part's name and bytes, kept in memory."""

    def __init__(self, boundary: bytes) -> None:
        super().__init__()
        self.parts: list[tuple[str, bytearray]] = []
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._reset_headers,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
            },
        )

    def _headers_finished(self) -> None:
        name = self._disposition().get(b"name", b"")
        self.parts.append((name.decode("utf-8", "replace"), bytearray()))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1][1].extend(data[start:end])


async def read_multipart(request: Request, limit: int) -> list[tuple[str, bytes]]:
    """Return the parts (name, bytes) of a posted multipart/form-data body of at most `limit`
    bytes, in memory: Starlette's `request.form()` would spool a file part to a temporary file
    in the clear, and a signed consent form names the survivor (promise 1).

    Raises `BadField` for another content type or a body that ends before its last boundary,
    `TooLarge` past `limit`, `ClientDisconnect` when the client leaves.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadField("content-type", "a form of this site")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the limit is {limit} bytes")
    parts = _Parts(boundary)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise TooLarge(f"the limit is {limit} bytes")
        parts.parser.write(chunk)
    parts.parser.finalize()
    if parts.parser.state != MultipartState.END:
        raise BadField("form", "the form ended before its last part")
    return [(name, bytes(value)) for name, value in parts.parts]
