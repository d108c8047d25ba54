"""The HTTP protocol `tvault serve` runs: uvicorn's httptools protocol, minus two body copies,
with a cap on request headers.

uvicorn (0.42 and later) gathers a request body in a `bytearray` and hands the application
`bytes(bytearray)`: every byte of a deposit is copied twice more on the event loop, the busiest
thread of an upload. When the application has already taken everything received before (the
usual case for a streamed deposit, which takes each piece at once), `ZeroCopyBody` passes the
piece httptools parsed on as it is; `bytes()` of an exact `bytes` object is that object. In
every other case (a body still waiting, an upgrade, a finished response) uvicorn's own code
runs unchanged.

Measured with bench/deposit.py on the machine of bench/RESULTS.md: the event loop's CPU time
for a 1 GiB upload fell from 0.83-0.91 s to 0.54-0.69 s.

httptools has no limit on headers: it gathers a header of any size in memory before uvicorn
sees it (three 100 MB headers grew the server by 390 MB and were answered 200). `LimitedHeaders`
counts the bytes that arrive while a request's headers are incomplete and answers 431 (RFC 6585)
as soon as they pass `max_header_bytes`, or once the headers are complete if they, or their
number, pass the limits; the connection is then closed, so nothing more is read. The count may
overshoot by at most one read of the socket, which bounds the memory either way.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_HEADERS = 100
_TOO_LARGE = json.dumps(
    {
        "type": "urn:tvault:problem:headers-too-large",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": "request headers too large or too many; send long metadata in the body",
    }
).encode("ascii")


class ZeroCopyBody(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol`, handing body pieces to the application without copies."""

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if (
            cycle.body
            or cycle.response_complete
            or (self.parser.should_upgrade() and self._should_upgrade())
        ):
            if not isinstance(cycle.body, bytearray):  # typed bytearray; we may have set bytes
                # A piece we kept is still waiting: back to uvicorn's bytearray, which grows in
                # place (bytes += bytes would copy everything gathered at every piece).
                cycle.body = bytearray(cycle.body)
            super().on_body(body)
            return
        # As uvicorn's own `on_body`, with the piece kept instead of copied into a bytearray.
        cycle.body = body  # type: ignore[assignment]  # receive() calls bytes() on it: no copy
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()


class _HeadersTooLarge(Exception):
    """Raised in a parser callback to stop parsing a request whose headers pass the limits."""


class LimitedHeaders(ZeroCopyBody):
    """`ZeroCopyBody` refusing requests whose headers pass `max_header_bytes` (request line
    included) or `max_headers` fields, with 431 and a closed connection. `limited` sets them."""

    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    max_headers = DEFAULT_MAX_HEADERS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True  # until the current request's headers are complete
        self._pending = 0  # bytes received meanwhile
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers:
            self._pending += len(data)
        super().data_received(data)
        if self._awaiting_headers and self._pending > self.max_header_bytes and not self._refused:
            self._refuse()

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.max_headers:
            self._refused = True
            raise _HeadersTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refused = True
            raise _HeadersTooLarge
        self._awaiting_headers, self._pending = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_headers = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception raised in a callback as a parser error, which uvicorn
        # answers with 400: ours is a 431.
        if self._refused:
            self._refuse()
            return
        super().send_400_response(msg)

    def _refuse(self) -> None:
        self._refused = True
        if self.transport.is_closing():
            return
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(_TOO_LARGE)).encode("ascii") + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(head + _TOO_LARGE)
        self.transport.close()


def limited(max_header_bytes: int, max_headers: int) -> type[LimitedHeaders]:
    """Return the protocol class `tvault serve` runs, with these header limits."""
    return type(
        "LimitedHeaders",
        (LimitedHeaders,),
        {"max_header_bytes": max_header_bytes, "max_headers": max_headers},
    )
