"""`tvault serve` believes X-Forwarded-For only from configured proxies, and caps headers.

uvicorn's default trusts forwarding headers from loopback: a client there could name a fresh
address per refused token and never meet the limiter. By default the vault trusts no proxy;
`TVAULT_TRUSTED_PROXIES` names those it does.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, start_server

BURST = 3
# Claims no account: only the address budget is spent (a claimed one has its own budget).
FORGED = "bm90.YS10b2tlbg.c2ln"


def _serve(home: Path, **settings: str) -> Iterator[Server]:
    server = start_server(home, TVAULT_AUTH_FAILURE_BURST=str(BURST), **settings)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("e2e-limits") / "vault")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(
        tmp_path_factory.mktemp("e2e-proxied") / "vault", TVAULT_TRUSTED_PROXIES="127.0.0.1"
    )


def _refused(server: Server, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return [
            client.get(
                "/v1/me",
                headers={"Authorization": f"Bearer {FORGED}", "X-Forwarded-For": address},
            ).status_code
            for address in forwarded
        ]


def test_a_spoofed_forwarded_address_does_not_escape_the_limiter(plain: Server) -> None:
    answers = _refused(plain, [f"10.9.0.{n}" for n in range(BURST + 3)])
    assert answers[:BURST] == [401] * BURST and set(answers[BURST:]) == {429}


def test_a_trusted_proxy_forwards_each_client_address(proxied: Server) -> None:
    # Six clients behind the proxy, one refused attempt each: nobody is over the budget ...
    assert _refused(proxied, [f"10.8.0.{n}" for n in range(BURST + 3)]) == [401] * (BURST + 3)
    # ... while one of them, trying again and again, is.
    answers = _refused(proxied, ["10.7.0.1"] * (BURST + 2))
    assert set(answers[BURST:]) == {429}


def test_serve_answers_431_to_oversized_headers(plain: Server) -> None:
    host, port = plain.url.removeprefix("http://").split(":")
    value = b"a" * (40 * 1024)
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: %s\r\nX-B: %s\r\n\r\n" % (value, value)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert httpx.get(f"{plain.url}/healthz", timeout=10).status_code == 200
