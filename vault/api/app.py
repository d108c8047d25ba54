"""The FastAPI application of a vault, and the start-up it runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request, Response

from vault.api import problems
from vault.api.deps import verification_key
from vault.api.routes import public, v1
from vault.compose import Vault
from vault.sweep import sweep

access_log = logging.getLogger("vault.access")


def create_app(vault: Vault) -> FastAPI:
    """Return the API of `vault`; its lifespan sweeps abandoned objects and runs the services."""

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

    app = FastAPI(title="testimony-vault", version="0.1.0", lifespan=lifespan)
    app.state.vault = vault
    app.state.public_pem = verification_key(vault)
    problems.install(app)
    app.include_router(public)
    app.include_router(v1)

    @app.middleware("http")
    async def log_access(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Our own access log, replacing uvicorn's: method, path and status, never the query
        # string (deposit metadata such as a title travels there; promise 1 keeps it out).
        response = await call_next(request)
        access_log.info("%s %s %d", request.method, request.url.path, response.status_code)
        return response

    return app
