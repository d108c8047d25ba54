"""`vault.api.streaming.ReadAheadResponse`: whole blocks, bounded read-ahead, clean endings."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from vault.api.streaming import ReadAheadResponse

CHUNK = 64 * 1024
SCOPE = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "path": "/"}


class Source:
    """64 KiB chunks, counting how many were made and whether the generator was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.made = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for number in range(self.count):
                if number == self.fail_at:
                    raise ValueError("damaged chunk")
                self.made += 1
                yield bytes([number % 256]) * CHUNK
        finally:
            self.closed.set()


async def _receive() -> dict[str, Any]:
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


def _serve(response: ReadAheadResponse, send: Any) -> None:
    asyncio.run(response(SCOPE, _receive, send))


def test_the_body_is_sent_whole_in_blocks_of_one_mib() -> None:
    source = Source(40)  # 2.5 MiB
    bodies: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    _serve(ReadAheadResponse(iter(source), block=1024 * 1024), send)
    assert b"".join(bodies) == b"".join(bytes([n]) * CHUNK for n in range(40))
    # Two full blocks, the rest, and the empty closing message: 4 sends instead of 41.
    assert [len(b) for b in bodies] == [1024 * 1024, 1024 * 1024, 8 * CHUNK, 0]
    assert source.closed.wait(5)


def test_an_error_in_the_source_is_raised_where_the_body_is_sent() -> None:
    # A damaged age chunk (keys.UnsealError) must end the response, never complete it.
    source = Source(40, fail_at=20)
    bodies: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message)

    with pytest.raises(ValueError, match="damaged chunk"):
        _serve(ReadAheadResponse(iter(source), block=CHUNK * 4), send)
    # The authentic chunks before the damage, and never the message that ends the body.
    assert sum(len(m["body"]) for m in bodies) == 20 * CHUNK
    assert all(m["more_body"] for m in bodies)
    assert source.closed.wait(5)


def test_a_slow_client_holds_the_reader_to_a_few_blocks_and_leaving_stops_it() -> None:
    source = Source(1000)  # 62.5 MiB, far more than may be read ahead
    sent = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        if message["type"] == "http.response.body":
            sent += 1
            if sent == 2:
                await asyncio.sleep(0.2)  # the client stalls: the reader must wait
                assert source.made <= (2 + 4 + 1) * 4  # sent, queued (DEPTH) and in hand
                raise OSError("client went away")

    before = threading.active_count()
    with pytest.raises(Exception):  # noqa: B017 (Starlette's ClientDisconnect or the OSError)
        _serve(ReadAheadResponse(iter(source), block=CHUNK * 4, depth=4), send)
    assert source.closed.wait(5)  # the thread ended and closed the source (the object file)
    assert source.made < 1000
    for _ in range(50):
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.1)
    assert threading.active_count() <= before
