"""Install the web interface on the API's FastAPI app: routers, static files, headers, errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
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


# The pages' routes, included here once per process (`vault.app` serves them on each app).
pages = APIRouter()
pages.include_router(public_pages.public)
pages.include_router(oidc_pages.pages)
pages.include_router(account_pages.pages)
pages.include_router(account_pages.halfway)
pages.include_router(deposit_pages.pages)
# The web session's tus endpoint is a page's helper, not part of the token API's document.
pages.include_router(deposit_pages.uploads, include_in_schema=False)
pages.include_router(reading_pages.pages)
pages.include_router(consent_pages.pages)
pages.include_router(custodian_pages.pages)
pages.include_router(admin_pages.pages)
pages.include_router(case_pages.pages)
pages.include_router(hold_pages.pages)
pages.include_router(export_pages.pages)
pages.include_router(ledger_pages.pages)


def install(app: FastAPI) -> None:
    """Serve the pages' static files, security headers and error pages on `app`, whose routes
    include `pages`."""
    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)


__all__ = ["install", "pages"]
