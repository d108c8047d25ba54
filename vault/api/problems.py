"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vault.api.refusals import record_answer
from vault.errors import StorageFull, StorageUnavailable, TooManyRequests, VaultError

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
STATUS = {
    "bad-field": 422,
    "misplaced-field": 400,
    "not-found": 404,
    "forbidden": 403,
    "unauthenticated": 401,
    "too-large": 413,
    "conflict": 409,
    "gone": 410,
    "precondition-failed": 412,  # vault.api.tus_routes: another tus version
    "range-not-satisfiable": 416,
    "too-many-requests": 429,
    "unavailable": 503,
    "duplicate": 409,  # vault.deposit.Duplicate: the case has these bytes, refused on request
    "idempotency-in-flight": 409,  # vault.idempotency: the draft's "request outstanding"
    "idempotency-key-reused": 422,  # the draft's "key reused with a different payload"
    # RFC 4918 11.5: 507 Insufficient Storage, the server cannot store what the request needs.
    "storage-full": 507,
    "storage-unavailable": 503,
}


def problem(
    status: int, detail: str, kind: str | None = None, extra: dict[str, object] | None = None
) -> JSONResponse:
    """Return a problem response with `status` and `detail` (and `extra` members)."""
    title = HTTPStatus(status).phrase
    body: dict[str, object] = {
        "type": f"urn:tvault:problem:{kind}" if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _vault_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VaultError)
    # RFC 9457 extension members: which store fails, and how (a word from a fixed list); the
    # error's own structural members (`VaultError.members`).
    extra = exc.members()
    if isinstance(exc, StorageFull | StorageUnavailable):
        extra["cause"] = exc.cause
    response = problem(STATUS.get(exc.code, 400), exc.detail, exc.code, extra or None)
    await record_answer(request, response.status_code, exc.code)
    if isinstance(exc, TooManyRequests | StorageUnavailable):
        # RFC 9110 10.2.3: whole seconds, rounded up so a client that waits is let in.
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    await record_answer(request, exc.status_code, f"http-{exc.status_code}")
    return problem(exc.status_code, str(exc.detail))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Name the fields, never echo their values (they may be sealed things such as a title).
    fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
    await record_answer(request, 422, "bad-field")
    return problem(422, "invalid fields: " + ", ".join(fields), "bad-field")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # Log the type only: an exception message may quote data promise 1 keeps out of logs.
    log.error("internal error: %s", type(exc).__name__)
    return problem(500, "internal error")


# The handlers by error type, for `vault.web` to fall back on outside its pages.
HANDLERS = {
    VaultError: _vault_error,
    HTTPException: _http_error,
    RequestValidationError: _validation_error,
    Exception: _unexpected,
}


def install(app: FastAPI) -> None:
    """Make every error of `app` a problem document."""
    app.add_exception_handler(VaultError, _vault_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
