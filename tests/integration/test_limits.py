"""Limits an attacker cannot turn around: the header cap.

Request headers beyond the cap are answered 431 without being gathered in memory
(vault.api.protocol.LimitedHeaders under a real uvicorn on loopback). The refused-token budget
is tests/unit/vault/test_limits.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.loopback import served
from vault.api.protocol import limited


class _Hello:
    """An ASGI app answering 200 "hello" after reading the body."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})


LIMIT = 16 * 1024


@pytest.fixture
def port() -> Iterator[int]:
    with served(_Hello(), limited(LIMIT, 30)) as bound:
        yield bound


def _exchange(port: int, head: bytes, *, spread: int = 0) -> bytes:
    """Send `head` (then `spread` more bytes of one header value); return what came back."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head)
            piece = b"a" * 65536
            for _ in range(spread // len(piece)):
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server hung up: what it said is read below
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_headers_within_the_limits_are_served(port: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 4000 + b"\r\nConnection: close\r\n\r\n"
    assert _status(_exchange(port, head)) == 200


def test_too_large_headers_get_431(port: int) -> None:
    value = b"a" * (LIMIT // 2)
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-A: %s\r\nX-B: %s\r\nX-C: %s\r\n\r\n" % ((value,) * 3)
    answer = _exchange(port, head)
    assert _status(answer) == 431
    assert b"application/problem+json" in answer


def test_too_many_headers_get_431(port: int) -> None:
    fields = b"".join(b"X-%d: 1\r\n" % n for n in range(40))
    assert _status(_exchange(port, b"GET / HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")) == 431


def test_a_huge_header_is_never_gathered_in_memory(port: int) -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    # 3 x 20 MB of one header value that never ends: refused after about the limit.
    answers = [
        _exchange(port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ", spread=20 * 1024 * 1024)
        for _ in range(3)
    ]
    grown = process.memory_info().rss - before
    assert all(_status(a) in (431, 0) for a in answers)  # 0: the reset beat the answer
    assert any(_status(a) == 431 for a in answers)
    assert grown < 16 * 1024 * 1024, grown
