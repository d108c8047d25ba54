"""A real tus client (tuspy) against a real `tvault serve`: an upload cut halfway, resumed.

The connection is dropped in the middle of a PATCH body; the bytes that arrived are kept
sealed (nothing readable under the vault's directory), a HEAD gives the offset to resume from,
and tuspy resumes from it: the item's SHA-256 is the file's (issue 19 points 4 and 11).
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient import client as tus_client

from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.timeout(300)

MARKER = b"MARCADOR-DEL-CORTE-41c9"
TITLE = "Testimonio de la oficina de campo"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    quiet = {"TVAULT_EMBEDDED_WORKER": "false", "TVAULT_SEARCH_HELPER": "false"}
    running = start_server(tmp_path_factory.mktemp("tus") / "vault", **quiet)
    yield running
    running.stop()


def _cut_patch(url: str, token: str, offset: int, body: bytes, declared: int) -> None:
    """Send a PATCH that announces `declared` bytes, send `body`, then drop the connection."""
    parts = urlsplit(url)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + body)
        time.sleep(0.5)  # let the server read what was sent before the cut


def _readable(home: Path) -> list[Path]:
    return [
        path
        for path in (home / "uploads").rglob("*")
        if path.is_file() and (MARKER in (data := path.read_bytes()) or TITLE.encode() in data)
    ]


def test_upload_cut_halfway_resumes_to_the_same_bytes(served: Server, tmp_path: Path) -> None:
    token = served.token("tina")
    with served.client("tina") as api, (tmp_path / "testimonio.txt").open("w+b") as source:
        _cut_and_resume(served, token, api, source)


def _cut_and_resume(served: Server, token: str, api: httpx.Client, source: BinaryIO) -> None:
    case = api.post("/v1/cases", json={"name": "Oficina de campo"}).json()["id"]
    data = (MARKER + b" palabras del testimonio " * 40_000) * 3  # about 3 MiB
    source.write(data)
    metadata = {"case": case, "kind": "testimony", "consent": "therapy,legal", "title": TITLE}
    tus = tus_client.TusClient(
        f"{served.url}/v1/uploads", headers={"Authorization": f"Bearer {token}"}
    )

    first = tus.uploader(file_stream=source, chunk_size=512 * 1024, metadata=metadata)
    first.upload_chunk()
    assert first.offset == 512 * 1024
    url = first.url
    assert url is not None

    # The link drops halfway through the next PATCH's body.
    sent = 1024 * 1024 + 12_345
    _cut_patch(url, token, first.offset, data[first.offset : first.offset + sent], len(data))
    # The server notices the cut when it next reads the socket: wait for it (at most 20 s).
    deadline = time.monotonic() + 20
    while True:
        head = api.head(url, headers={"Tus-Resumable": "1.0.0"})
        assert head.status_code == 200
        resumed_at = int(head.headers["Upload-Offset"])
        if resumed_at != first.offset or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert resumed_at == first.offset + sent  # every byte that arrived is kept
    assert _readable(served.home) == []  # and sealed: neither the file nor the title in clear

    # A PATCH at the wrong offset is refused and changes nothing.
    wrong = api.patch(
        url,
        content=b"x",
        headers={
            "Tus-Resumable": "1.0.0",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )
    assert wrong.status_code == 409

    # tuspy resumes from the server's offset (its HEAD) and finishes.
    again = tus.uploader(file_stream=source, url=url, chunk_size=1024 * 1024)
    assert again.offset == resumed_at
    again.upload()

    items = api.get(f"/v1/cases/{case}/items").json()
    assert len(items) == 1
    assert items[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert items[0]["title"] == TITLE
    assert api.get(f"/v1/items/{items[0]['id']}/content").content == data
    assert list((served.home / "uploads").iterdir()) == []
