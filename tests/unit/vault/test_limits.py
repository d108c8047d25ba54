"""Limits an attacker cannot turn around: the refused-token budget and the header cap.

Others' failures never lock a valid token out; refused attempts are counted per address and
per claimed account; request headers beyond the cap are answered 431 without being gathered
in memory (vault.api.protocol.LimitedHeaders under a real uvicorn on loopback).
"""

from __future__ import annotations

import base64
import json
import socket
import warnings
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from tests.loopback import served
from tests.unit.vault.tokens import token_for
from vault.api.protocol import limited
from vault.app import create_app
from vault.parts import Vault

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def _forged(subject: str) -> str:
    """A token claiming `subject`, signed by nobody the vault knows."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return ".".join([part({"alg": "ES256", "kid": "x"}), part({"sub": subject}), "c2ln"])


@pytest.fixture
def app(vault: Vault) -> FastAPI:
    return create_app(vault)


def _client(app: FastAPI, address: str, token: str | None = None) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url="http://vault.test", headers=headers, client=(address, 4000))


def test_a_valid_token_is_never_refused_because_others_failed(app: FastAPI, vault: Vault) -> None:
    burst = vault.settings.auth_failure_burst
    with _client(app, "10.0.0.1") as anonymous:
        answers = [anonymous.get("/v1/me").status_code for _ in range(burst + 5)]
    assert answers[:burst] == [401] * burst and set(answers[burst:]) == {429}
    # The same address, now with the custodian's valid token: heard at once.
    with _client(app, "10.0.0.1", token_for(vault, "admin", "custodian")) as admin:
        me = admin.get("/v1/me")
    assert me.status_code == 200 and me.json()["name"] == "admin"


def test_refused_attempts_against_one_account_are_counted_from_any_address(
    app: FastAPI, vault: Vault
) -> None:
    burst = vault.settings.auth_failure_burst
    answers = []
    for n in range(burst + 3):  # a fresh address for every guess
        with _client(app, f"10.1.0.{n}", _forged("lena")) as guesser:
            answers.append(guesser.get("/v1/me").status_code)
    assert answers[:burst] == [401] * burst and set(answers[burst:]) == {429}
    # Another account's refusals, and a fresh address without a token, still get 401 ...
    with _client(app, "10.2.0.1", _forged("tina")) as other:
        assert other.get("/v1/me").status_code == 401
    # ... and lena's own valid token is heard.
    with _client(app, "10.1.0.1", token_for(vault, "lena", "lawyer")) as lena:
        assert lena.get("/v1/me").status_code == 200


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
