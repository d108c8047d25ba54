"""Response bodies made on a thread of their own and handed to the event loop in large blocks.

A sync iterator given to Starlette's `StreamingResponse` runs through `iterate_in_threadpool`:
one thread hop and one ASGI send per item, 16,384 of each for a 1 GiB original in 64 KiB age
chunks. Profiled (issue 20 point 11), that capped a download at about a fifth of what reading,
decrypting and hashing the same object costs. Here one thread reads and decrypts ahead, joins
the chunks into blocks of `BLOCK` bytes, and keeps at most `DEPTH` blocks waiting: the event
loop sends 1 MiB at a time while the next block is being decrypted, and memory stays flat
(promise 6: at most `DEPTH + 1` blocks per download).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

BLOCK = 1024 * 1024
DEPTH = 4
_END = object()


class _Ahead:
    """The reading thread and its bounded hand-over to the event loop."""

    def __init__(self, chunks: Iterator[bytes], block: int, depth: int) -> None:
        self._chunks = chunks
        self._block = block
        self._slots = threading.Semaphore(depth)
        self._stopped = threading.Event()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="tvault-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _wait_slot(self) -> bool:
        self._slots.acquire()
        return not self._stopped.is_set()

    def _run(self) -> None:
        try:
            pending: list[bytes] = []
            size = 0
            for chunk in self._chunks:
                pending.append(chunk)
                size += len(chunk)
                if size >= self._block:
                    if not self._wait_slot():
                        return
                    self._put(b"".join(pending))
                    pending, size = [], 0
            if pending:
                if not self._wait_slot():
                    return
                self._put(b"".join(pending))
            self._put(_END)
        except BaseException as exc:  # handed to the loop, raised where the body is sent
            self._put(exc)
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()  # a generator's `with` blocks (the open object) end on this thread

    async def next(self) -> bytes | None:
        item = await self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        self._slots.release()
        assert isinstance(item, bytes)
        return item

    def stop(self) -> None:
        """Let the thread end at its next block (the client left, or the body was sent)."""
        self._stopped.set()
        self._slots.release()  # wake it if it waits for room


class ReadAheadResponse(StreamingResponse):
    """A `StreamingResponse` whose sync `chunks` are read on their own thread, `BLOCK` bytes
    per ASGI send. The thread is stopped however the response ends; an exception raised by
    `chunks` (e.g. `keys.UnsealError` on a damaged object) is raised where the body is sent,
    so the connection is dropped rather than the file completed."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        media_type: str = "application/octet-stream",
        block: int = BLOCK,
        depth: int = DEPTH,
    ) -> None:
        self._source = chunks
        self._block = block
        self._depth = depth
        self._ahead: _Ahead | None = None
        super().__init__(self._blocks(), headers=headers, media_type=media_type)

    async def _blocks(self) -> AsyncIterator[bytes]:
        self._ahead = _Ahead(self._source, self._block, self._depth)
        while (block := await self._ahead.next()) is not None:
            yield block

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._ahead is not None:
                self._ahead.stop()
            else:
                close = getattr(self._source, "close", None)
                if close is not None:
                    close()  # never started: release the open object here
