"""The FastAPI application of a vault: the API under `/v1` and the web pages at `/`, and the
start-up it runs. It stands above `vault.api` and `vault.web`, which never import it, and below
`vault.compose`, which builds it with its gatekeeping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vault.api import (
    access_routes,
    approval_routes,
    credential_routes,
    export_routes,
    ledger_routes,
    problems,
    refusals,
    search_routes,
    signature_routes,
    tus_routes,
)
from vault.api.routes import public, v1
from vault.parts import Gatekeeping, Vault
from vault.sweep import sweep
from vault.web.site import install as install_web
from vault.web.site import pages

access_log = logging.getLogger("vault.access")


# Paths whose last segment is a secret (a one-time set-password link, docs/web.md): the log
# names the route, never the secret.
SECRET_PATHS = ("/set-password/",)


def logged_path(path: str) -> str:
    """Return `path` as the access log shows it: a secret path segment replaced by `…`."""
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "…"
    return path


class AccessLog:
    """Our own access log, replacing uvicorn's: method, path and status, never the query string.

    Sealed deposit metadata is refused in the query string (vault.headers); logging none of it
    keeps promise 1 even for a client that sends something there anyway. A plain ASGI
    middleware (not `BaseHTTPMiddleware`, which re-streams every request body through a queue
    and halved deposit throughput).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            access_log.info("%s %s %d", scope["method"], logged_path(scope["path"]), status)


# Every route of the API under `/v1` and of the web pages at `/` (docs/web.md: the same use
# cases, the same ledger), included once per process. FastAPI works out each included route's
# dependencies on the first request that reaches it, once per inclusion: included into each new
# app, that was 70 ms per app built (each test builds its own). Every app shares these
# inclusions; none overrides a dependency (`app.dependency_overrides` would not reach them).
ROUTES = APIRouter()
for _router in (
    public,
    v1,
    access_routes.router,
    approval_routes.router,
    search_routes.router,
    ledger_routes.router,
    signature_routes.router,
    credential_routes.router,
    export_routes.router,
    tus_routes.router,
    pages,
):
    ROUTES.include_router(_router)


def create_app(vault: Vault, gatekeeping: Gatekeeping) -> FastAPI:
    """Return the API of `vault`; its lifespan sweeps abandoned objects and runs the services.

    `gatekeeping` (built for this app by `vault.compose`, which builds the app) checks the API's
    tokens and the web sign-ins for the app's life."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(sweep, vault)
        for service in vault.services:
            service.start()
        try:
            yield
        finally:
            for service in reversed(vault.services):
                service.stop()

    # FastAPI's own /docs and /redoc load scripts from a CDN: vault.api.docs_pages serves both.
    app = FastAPI(
        title="testimony-vault",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.vault = vault
    # Token verification (key and JWKS caches), the refused-token budget and the OIDC
    # principals known to be recorded live as long as the app; the API and the web pages read
    # them from its state.
    app.state.token_keys = gatekeeping.token_keys
    app.state.gate = gatekeeping.gate
    app.state.limiter = gatekeeping.limiter
    app.state.oidc_seen = gatekeeping.oidc_seen
    app.state.search_gate = gatekeeping.search_gate
    problems.install(app)
    refusals.install(app)
    app.router.routes.extend(ROUTES.routes)
    # The web pages' static files, headers and error pages (docs/web.md).
    install_web(app)
    app.add_middleware(AccessLog)

    return app
