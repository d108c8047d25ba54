"""`/docs` (Swagger UI) and `/redoc`, served from the vault itself, offline, no third party.

FastAPI's own pages load their scripts and fonts from a CDN: a vault used over Tor or on an
isolated network would show nothing, and every visit would tell the CDN that someone opened
this vault's API docs. Here the assets are vendored at pinned versions (`docs_assets/vendored.json`:
npm tarball integrity and each file's sha384, checked by the tests), each page names them with
Subresource Integrity, and a Content-Security-Policy confines the page to this origin. Public
routes (DESIGN.md: the docs need no token), listed in `vault.api.routes.public`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

ASSETS = Path(__file__).parent / "docs_assets"
# Same origin only; styles inline because both tools inject theirs at run time; Redoc runs its
# search in a worker made from a blob.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {".js": "text/javascript", ".css": "text/css"}

router = APIRouter(include_in_schema=False)


@cache
def manifest() -> dict[str, Any]:
    """Return `docs_assets/vendored.json`: the pinned packages and each served file's sha384."""
    loaded: dict[str, Any] = json.loads((ASSETS / "vendored.json").read_text("utf-8"))
    return loaded


def _tag(name: str) -> str:
    integrity = manifest()["files"][name]
    if name.endswith(".css"):
        return f'<link rel="stylesheet" href="docs/assets/{name}" integrity="{integrity}">'
    return f'<script src="docs/assets/{name}" integrity="{integrity}"></script>'


def _page(title: str, body: str, head: str = "") -> HTMLResponse:
    # Relative URLs: the pages work unchanged behind a proxy that serves the vault under a path.
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{title}</title>{head}</head>'
        f"<body>{body}</body></html>\n"
    )
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return HTMLResponse(html, headers=headers)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over `/openapi.json` ("Try it out" sends requests to this vault only)."""
    scripts = _tag("swagger-ui/swagger-ui-bundle.js") + _tag("docs-init.js")
    return _page(
        "testimony-vault API",
        f'<div id="swagger-ui"></div>{scripts}',
        head=_tag("swagger-ui/swagger-ui.css"),
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """Redoc over `/openapi.json`."""
    return _page(
        "testimony-vault API",
        '<redoc spec-url="openapi.json" hide-download-button></redoc>'
        + _tag("redoc/redoc.standalone.js"),
    )


@router.get("/docs/assets/{name:path}")
def asset(name: str) -> Response:
    """One vendored file; only the names of the manifest are served (no path is ever joined
    from the request, so nothing else under the package can be reached)."""
    if name not in manifest()["files"]:
        return Response(status_code=404)
    media_type = _TYPES.get(Path(name).suffix, "application/octet-stream")
    return FileResponse(
        ASSETS / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
