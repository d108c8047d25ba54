"""vault.api.protocol.ZeroCopyBody under a real uvicorn server on loopback.

Bodies must reach the application whole and in order, as `bytes`, whether the application
takes each piece at once (the path without copies) or lets pieces pile up (uvicorn's own path).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.loopback import served
from vault.api.protocol import ZeroCopyBody


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts body pieces: all of them, and those left to uvicorn's own `on_body`."""
    counts = {"all": 0, "uvicorn": 0}
    ours, theirs = ZeroCopyBody.on_body, HttpToolsProtocol.on_body

    def count_all(self: ZeroCopyBody, body: bytes) -> None:
        counts["all"] += 1
        ours(self, body)

    def count_theirs(self: HttpToolsProtocol, body: bytes) -> None:
        counts["uvicorn"] += 1
        theirs(self, body)

    monkeypatch.setattr(ZeroCopyBody, "on_body", count_all)
    monkeypatch.setattr(HttpToolsProtocol, "on_body", count_theirs)
    return counts


class _Recorder:
    """An ASGI app answering each request with the SHA-256 and size of the body it read."""

    def __init__(self) -> None:
        self.types: set[type] = set()
        self.pause = 0.0  # seconds to wait before each receive(): lets pieces pile up

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        digest, size = hashlib.sha256(), 0
        while True:
            if self.pause:
                await asyncio.sleep(self.pause)
            message = await receive()
            body = message.get("body", b"")
            self.types.add(type(body))
            digest.update(body)
            size += len(body)
            if not message.get("more_body"):
                break
        answer = f"{size} {digest.hexdigest()}".encode()
        headers = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def server() -> Iterator[tuple[int, _Recorder]]:
    app = _Recorder()
    with served(app, ZeroCopyBody) as port:
        yield port, app


def _post(port: int, pieces: list[bytes], *, chunked: bool = False, gap: float = 0.0) -> str:
    """POST `pieces` on one connection, twice (keep-alive); return the last answer's body."""
    head = "POST / HTTP/1.1\r\nHost: test\r\n"
    answers = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(2):
            if chunked:
                sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            else:
                length = sum(map(len, pieces))
                sock.sendall((head + f"Content-Length: {length}\r\n\r\n").encode())
            for piece in pieces:
                if chunked:
                    sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    sock.sendall(piece)
                if gap:
                    time.sleep(gap)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            answers.append(_read_response(sock))
    assert answers[0] == answers[1]
    return answers[1]


def _read_response(sock: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[:length].decode()


def _expected(pieces: list[bytes]) -> str:
    body = b"".join(pieces)
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def _pieces() -> list[bytes]:
    sizes = [1, 7, 65_536, 300_001, 1024 * 1024 + 3, 17]
    return [os.urandom(size) for size in sizes * 3]


def test_body_taken_at_once_arrives_whole(
    server: tuple[int, _Recorder], paths: dict[str, int]
) -> None:
    port, app = server
    pieces = _pieces()
    assert _post(port, pieces, gap=0.001) == _expected(pieces)
    assert app.types == {bytes}
    # The application keeps up, so most pieces took the path without copies.
    assert paths["uvicorn"] * 2 < paths["all"], paths


def test_body_piling_up_arrives_whole(server: tuple[int, _Recorder], paths: dict[str, int]) -> None:
    port, app = server
    # The application lags behind the small pieces: uvicorn's own accumulation runs.
    app.pause = 0.05
    pieces = [os.urandom(n) for n in (1, 2, 3, 4096, 5, 70_000, 1, 9, 300_001)]
    assert _post(port, pieces, gap=0.005) == _expected(pieces)
    assert app.types == {bytes}
    assert paths["uvicorn"] > 0, paths


def test_chunked_body_with_small_pieces_arrives_whole(
    server: tuple[int, _Recorder], paths: dict[str, int]
) -> None:
    port, app = server
    pieces = [os.urandom(n) for n in (1, 2, 3, 4096, 5, 70_000, 1)]
    assert _post(port, pieces, chunked=True, gap=0.001) == _expected(pieces)
    assert app.types == {bytes}
    assert paths["all"] > 0
