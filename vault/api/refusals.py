"""Refused and interrupted deposits are ledger entries too (docs/ledger.md: every refused attempt).

Refusals by policy (`access denied`), by storage faults, as duplicates and by idempotency are
recorded where they are decided. What is left is decided by the request itself: a body over
the limit (413, from `Content-Length` before a byte is read, or while streaming), metadata that
does not validate (422), and a client that leaves before its body is complete. Each becomes one
`deposit refused` entry with its `cause`, and one log line (`vault.storage_faults.record`); the
interrupted request ends with status 499 in the access log (nginx's "client closed request":
nobody is left to read an answer) and no traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

import anyio
from anyio import to_thread
from fastapi import FastAPI, Request, Response
from starlette.requests import ClientDisconnect

from policies import Principal
from vault import storage_faults
from vault.errors import BadField, TooLarge
from vault.parts import Vault

TOO_LARGE: Final = "too-large"
BAD_FIELD: Final = "bad-field"
INTERRUPTED: Final = "interrupted"
CLIENT_CLOSED: Final = 499


@contextlib.asynccontextmanager
async def recorded(vault: Vault, principal: Principal, case_id: str) -> AsyncIterator[None]:
    """Record a deposit into `case_id` refused inside as too large, malformed or interrupted,
    then let the error go on to its answer."""
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


def install(app: FastAPI) -> None:
    """Answer `ClientDisconnect` quietly (the refusal was recorded and logged in one line)."""
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
