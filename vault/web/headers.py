"""Security headers of every web page (not the API under `/v1`, nor its `/docs`).

A plain ASGI middleware, like `vault.app.AccessLog`, so a streamed deposit is not
re-buffered. The Content-Security-Policy allows scripts, styles and images from this origin
only and no inline script (CONVENTIONS.md "Web pages"); no page may be framed (clickjacking);
no page's address is sent to another site; and no page is kept in a cache, since pages show
case data (`Cache-Control: no-store`; static files are the exception, they hold none).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
# Not pages: the API and what FastAPI serves for it (Swagger UI loads its own scripts).
NOT_PAGES: Final = (
    "/v1/",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/.well-known/",
)
STATIC: Final = "/static/"


def is_page(path: str) -> bool:
    """Return whether `path` belongs to the web interface rather than the API."""
    return not path.startswith(NOT_PAGES)


class SecurityHeaders:
    """Add `HEADERS` (and `no-store`, except on static files) to every web response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {name for name, _ in HEADERS}
                    and (static or k.lower() != b"cache-control")
                ]
                headers.extend(HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
