"""A TCP proxy on loopback that loses chosen HTTP responses, as a flaky network does.

Responses are numbered in the order their first bytes come back from the server, over every
connection. `CUT` closes both sides when that response starts (the client sees the connection
drop after the server has committed); `HOLD` swallows it and keeps the connection open (the
client waits, as for a server that never answers) and sets `held`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping

CUT = "cut"
HOLD = "hold"


class Proxy:
    """Forward 127.0.0.1:`port` to 127.0.0.1:`upstream`, losing the responses `actions` names."""

    def __init__(self, upstream: int, actions: Mapping[int, str]) -> None:
        self.upstream = upstream
        self.actions = dict(actions)
        self.responses = 0
        self.held = threading.Event()
        self.cut = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closing = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        for sock in list(self._sockets):
            _close(sock)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [client, upstream]
            awaiting = threading.Event()  # the client sent a request not yet answered
            threading.Thread(
                target=self._requests, args=(client, upstream, awaiting), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(upstream, client, awaiting), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, awaiting: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                awaiting.set()
                upstream.sendall(data)
        _close(upstream)

    def _responses(
        self, upstream: socket.socket, client: socket.socket, awaiting: threading.Event
    ) -> None:
        holding = False
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if awaiting.is_set():
                    awaiting.clear()
                    with self._lock:
                        self.responses += 1
                        action = self.actions.get(self.responses)
                    if action == CUT:
                        self.cut.set()
                        break
                    if action == HOLD:
                        holding = True
                        self.held.set()
                if not holding:
                    client.sendall(data)
        if not holding:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextlib.contextmanager
def proxied(upstream: int, actions: Mapping[int, str]) -> Iterator[Proxy]:
    """Run a `Proxy` to `upstream` for the block; close it and its connections after."""
    proxy = Proxy(upstream, actions)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
