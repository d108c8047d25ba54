"""The HTTP protocol `tvault serve` runs: uvicorn's httptools protocol, minus two body copies.

uvicorn (0.42 and later) gathers a request body in a `bytearray` and hands the application
`bytes(bytearray)`: every byte of a deposit is copied twice more on the event loop, the busiest
thread of an upload. When the application has already taken everything received before (the
usual case for a streamed deposit, which takes each piece at once), `ZeroCopyBody` passes the
piece httptools parsed on as it is; `bytes()` of an exact `bytes` object is that object. In
every other case (a body still waiting, an upgrade, a finished response) uvicorn's own code
runs unchanged.

Measured with bench/deposit.py on the machine of bench/RESULTS.md: the event loop's CPU time
for a 1 GiB upload fell from 0.83-0.91 s to 0.54-0.69 s.
"""

from __future__ import annotations

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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
