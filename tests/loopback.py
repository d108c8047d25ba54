"""A real uvicorn server on a free loopback port, in a thread, for tests of the HTTP protocol."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


@contextlib.contextmanager
def served(app: Any, http: type) -> Iterator[int]:
    """Serve `app` with the protocol class `http` (and uvloop); yield the port, then stop."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=http, loop="uvloop", log_level="warning"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(500):
        if running.started:
            break
        time.sleep(0.01)
    assert running.started
    try:
        yield running.servers[0].sockets[0].getsockname()[1]
    finally:
        running.should_exit = True
        thread.join(timeout=10)
