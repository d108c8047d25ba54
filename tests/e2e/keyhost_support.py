"""A JWKS host on 127.0.0.1 for the token tests (an issuer's keys, or an attacker's)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class KeyHost:
    """A JWKS served on 127.0.0.1 by a thread; counts the requests it gets."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.document = json.dumps({"keys": keys}).encode()
        self.requests = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(host.document)))
                self.end_headers()
                self.wfile.write(host.document)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
