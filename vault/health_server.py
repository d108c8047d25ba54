"""`/healthz` and `/readyz` of a process without the API (`tvault worker --health-port`).

The same answers as the API's public routes (`vault.readiness`), over the standard library's
HTTP server on a small port: bound to 127.0.0.1 unless told otherwise, GET only, no other
path, nothing logged per request (a probe every few seconds would drown the log).
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from vault import readiness
from vault.api.problems import MEDIA_TYPE

if TYPE_CHECKING:
    from vault.parts import Vault

log = logging.getLogger(__name__)


def _handler(vault: Vault) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        server_version = "tvault"
        sys_version = ""

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, {"status": "ok"}, "application/json")
            elif self.path == "/readyz":
                status, body = readiness.answer(readiness.check(vault))
                self._send(status, body, "application/json" if status == 200 else MEDIA_TYPE)
            else:
                phrase = HTTPStatus.NOT_FOUND.phrase
                self._send(404, {"type": "about:blank", "title": phrase, "status": 404}, MEDIA_TYPE)

        def _send(self, status: int, body: dict[str, object], media_type: str) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a probe every few seconds would drown the log

    return Health


class HealthServer:
    """Serves `/healthz` and `/readyz` of `vault` on `host:port` in a background thread.

    A background service (start/stop). `port` 0 takes a free port; `port` tells which after
    `start`. Raises `OSError` from `start` if the address cannot be bound.
    """

    def __init__(self, vault: Vault, port: int, host: str = "127.0.0.1") -> None:
        self._vault = vault
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Return the bound port (after `start`), else the one asked for."""
        return self._server.server_address[1] if self._server else self._address[1]

    def start(self) -> None:
        """Bind and serve in a daemon thread; return at once."""
        self._server = ThreadingHTTPServer(self._address, _handler(self._vault))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="tvault-health", daemon=True
        )
        self._thread.start()
        log.info("health port %s:%d: /healthz, /readyz", self._address[0], self.port)

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
