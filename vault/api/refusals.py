"""Refused and interrupted deposits are ledger entries too (docs/ledger.md: every refused attempt).

Refusals by policy (`access denied`), by storage faults, as duplicates and by idempotency are
recorded where they are decided. What is left is decided by the request itself: a body over
the limit (413, from `Content-Length` before a byte is read, or while streaming), metadata that
does not validate (422), and a client that leaves before its body is complete. Each becomes one
`deposit refused` entry with its `cause`, and one log line (`vault.storage_faults.record`); the
interrupted request ends with status 499 in the access log (nginx's "client closed request":
nobody is left to read an answer) and no traceback.

Every other refusal (4xx) of a request on a route naming an item or a case (`item_id`,
`case_id`) is recorded by `record_answer`, called by the problem handlers (vault.api.problems),
unless the request already wrote an `access denied` or `deposit refused` entry
(`vault.ledger.watch_refusals`): a deposit's as `deposit refused` (a sealed field in the query
string: `misplaced-field`), the rest as `request refused`, with `attempted` the route (method
and path template, never a value) and `cause` the problem's code. Not recorded per request: an
unauthenticated one (401; its `access denied` entry, rate-limited, is `vault.api.deps`'s) and
one over its rate (429), so nobody without a token can fill the ledger.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
from anyio import to_thread
from fastapi import FastAPI, Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from policies import Principal, actions
from vault import ledger, storage_faults
from vault.errors import BadField, TooLarge
from vault.ids import ID_SHAPE
from vault.parts import Vault

log = logging.getLogger(__name__)

TOO_LARGE: Final = "too-large"
BAD_FIELD: Final = "bad-field"
INTERRUPTED: Final = "interrupted"
CLIENT_CLOSED: Final = 499
# Refusals not recorded per request (see the module's docstring).
UNRECORDED: Final = frozenset({401, 429})


@contextlib.asynccontextmanager
async def recorded(vault: Vault, principal: Principal, case_id: str | None) -> AsyncIterator[None]:
    """Record a deposit into `case_id` (None: a web form's field names it) refused inside as
    too large, malformed or interrupted, then let the error go on to its answer."""
    try:
        yield
    except (TooLarge, BadField, ClientDisconnect) as exc:
        if isinstance(exc, TooLarge):
            cause = TOO_LARGE
        elif isinstance(exc, BadField):
            cause = BAD_FIELD
        else:
            cause = INTERRUPTED
        # Shielded: a client that went away must not cancel the record of its going.
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(storage_faults.record, vault, principal, case_id, cause)
        raise


async def _client_disconnect(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=CLIENT_CLOSED)


def _record_request(
    vault: Vault,
    principal: Principal,
    action: str,
    ids: tuple[str | None, str | None],
    details: dict[str, Any],
) -> None:
    item_id, case_id = ids
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=principal,
            action=action,
            item_id=item_id,
            case_id=case_id,
            details=details,
        )


async def record_answer(request: Request, status: int, cause: str) -> None:
    """Record the refusal `status` (`cause`: the problem's code) of a request on an item or a
    case, unless it is recorded already or not recorded per request (module docstring)."""
    if not 400 <= status < 500 or status in UNRECORDED:
        return
    params = request.path_params
    if "item_id" not in params and "case_id" not in params:
        return
    principal = getattr(request.state, "principal", None)
    noted = ledger.refusals_noted()
    if principal is None or noted is None or noted:
        return
    # An id of another shape names nothing (and is not echoed into the ledger).
    item_id, case_id = (
        value if isinstance(value, str) and ID_SHAPE.fullmatch(value) else None
        for value in (params.get("item_id"), params.get("case_id"))
    )
    attempted = getattr(request.state, "attempted", None)
    if attempted == actions.ITEM_DEPOSIT:
        action = ledger.actions.DEPOSIT_REFUSED
    else:
        action = ledger.actions.REQUEST_REFUSED
        route = request.scope.get("route")
        attempted = f"{request.method} {getattr(route, 'path', '?')}"
    vault: Vault = request.app.state.vault
    details = {"attempted": attempted, "cause": cause}
    try:
        await to_thread.run_sync(
            _record_request, vault, principal, action, (item_id, case_id), details
        )
    except Exception as exc:
        # The client still gets its answer; the log says the refusal went unrecorded.
        log.error("request refused (%s); not recorded in the ledger: %s", cause, type(exc).__name__)
        return
    log.warning("%s: %s", action, cause)


class _WatchRefusals:
    """Note, per HTTP request, the refusal entries it writes (`vault.ledger.watch_refusals`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = ledger.watch_refusals()
        try:
            await self.app(scope, receive, send)
        finally:
            ledger.unwatch_refusals(token)


def install(app: FastAPI) -> None:
    """Answer `ClientDisconnect` quietly (the refusal was recorded and logged in one line), and
    note each request's refusal entries, so `record_answer` writes no second one."""
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_middleware(_WatchRefusals)
