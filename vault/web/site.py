"""Install the web interface on the API's FastAPI app: routers, static files, headers, errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from vault.web import (
    account_pages,
    admin_pages,
    case_pages,
    consent_pages,
    custodian_pages,
    deposit_pages,
    errors,
    export_pages,
    hold_pages,
    ledger_pages,
    oidc_pages,
    public_pages,
    reading_pages,
)
from vault.web.headers import SecurityHeaders

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the web pages, their static files, security headers and error pages on `app`."""
    errors.install(app)
    app.include_router(public_pages.public)
    app.include_router(oidc_pages.pages)
    app.include_router(account_pages.pages)
    app.include_router(account_pages.halfway)
    app.include_router(deposit_pages.pages)
    # The web session's tus endpoint is a page's helper, not part of the token API's document.
    app.include_router(deposit_pages.uploads, include_in_schema=False)
    app.include_router(reading_pages.pages)
    app.include_router(consent_pages.pages)
    app.include_router(custodian_pages.pages)
    app.include_router(admin_pages.pages)
    app.include_router(case_pages.pages)
    app.include_router(hold_pages.pages)
    app.include_router(export_pages.pages)
    app.include_router(ledger_pages.pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)


__all__ = ["install"]
