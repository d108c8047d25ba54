"""`tvault get` over a real socket (its direct read of the body, `_download_from_socket`): a
body cut short, a digest that does not match and a refusal each exit 1 with one line and leave
no file. The peer is a loopback server that answers as the API would and then misbehaves; a
served vault's downloads are checked end to end in tests/e2e/test_walkthrough.py."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault.cli import app as cli

ITEM = "a" * 26
BODY = bytes(range(256)) * 8192  # 2 MiB: several reads


def _digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


@pytest.fixture
def peer() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback server answering each connection with the next of its queued replies."""
    replies: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # a closed listener does not wake a blocked accept()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            with connection:
                connection.recv(65536)
                if replies:
                    connection.sendall(replies.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], replies
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def _get(port: int, target: Path) -> tuple[int, str]:
    env = {"TVAULT_TOKEN": "t", "TVAULT_URL": f"http://127.0.0.1:{port}"}
    result = CliRunner().invoke(cli, ["get", ITEM, "-o", str(target)], env=env)
    return result.exit_code, result.stderr


def _head(length: int, digest: str) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nRepr-Digest: {digest}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".tvault-")]


def test_a_whole_body_is_written_and_checked(peer: tuple[int, list[bytes]], tmp_path: Path) -> None:
    port, replies = peer
    replies.append(_head(len(BODY), _digest(BODY)) + BODY)
    target = tmp_path / "got.bin"
    code, stderr = _get(port, target)
    assert code == 0, stderr
    assert target.read_bytes() == BODY


def test_a_body_cut_short_leaves_no_file(peer: tuple[int, list[bytes]], tmp_path: Path) -> None:
    port, replies = peer
    replies.append(_head(len(BODY), _digest(BODY)) + BODY[: len(BODY) // 2])
    target = tmp_path / "got.bin"
    code, stderr = _get(port, target)
    assert code == 1
    assert stderr.startswith("tvault: download failed: the connection closed ")
    assert "Traceback" not in stderr and stderr.count("\n") == 1
    assert not target.exists() and _leftovers(tmp_path) == []


def test_bytes_other_than_announced_leave_no_file(
    peer: tuple[int, list[bytes]], tmp_path: Path
) -> None:
    port, replies = peer
    replies.append(_head(len(BODY), _digest(b"other")) + BODY)
    target = tmp_path / "got.bin"
    code, stderr = _get(port, target)
    assert code == 1 and "SHA-256 mismatch" in stderr and "nothing written" in stderr
    assert not target.exists() and _leftovers(tmp_path) == []


def test_a_refusal_is_one_line_with_the_problem(
    peer: tuple[int, list[bytes]], tmp_path: Path
) -> None:
    port, replies = peer
    problem = b'{"title": "Not Found", "status": 404, "detail": "no such item"}'
    replies.append(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n"
        + f"Content-Length: {len(problem)}\r\nConnection: close\r\n\r\n".encode()
        + problem
    )
    target = tmp_path / "got.bin"
    code, stderr = _get(port, target)
    assert code == 1 and "404" in stderr and "no such item" in stderr
    assert stderr.count("\n") == 1
    assert not target.exists() and _leftovers(tmp_path) == []
