"""The HTTP API: public routes in one place, tokens everywhere else, problem details, uploads."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.e2e.conftest import Server, start_server
from vault.headers import to_headers

PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/.well-known/jwks.json"}


@pytest.fixture(scope="module")
def case_id(server: Server) -> str:
    with server.client("tina") as client:
        response = client.post("/v1/cases", json={"name": "Case for the API"})
    assert response.status_code == 201
    case: str = response.json()["id"]
    return case


def _state(server: Server) -> tuple[set[str], int]:
    """Files under the vault (the database files aside) and the number of items.

    The background pipeline's outputs (extracted texts, the index; docs/jobs.md) and the ledger's
    signed checkpoints (the checkpoint service, docs/ledger.md) are left out: they appear on
    their own, after earlier requests.
    """
    files = {
        str(p.relative_to(server.home))
        for p in server.home.rglob("*")
        if p.is_file()
        and not p.name.startswith("vault.db")
        and not p.name.endswith(".lock")
        and not p.name.startswith("texts+")
        and not p.name.startswith("ledger+checkpoints+")
        and p.relative_to(server.home).parts[0] != "index"
    }
    with server.client("tina") as client:
        cases = client.get("/v1/cases").json()
        items = sum(len(client.get(f"/v1/cases/{c['id']}/items").json()) for c in cases)
    return files, items


def test_public_routes_answer_without_a_token(server: Server) -> None:
    for path in PUBLIC:
        # A generous timeout: /readyz waits up to 2 s per dependency on a loaded machine.
        assert httpx.get(server.url + path, timeout=60).status_code == 200, path
    keys = httpx.get(server.url + "/.well-known/jwks.json").json()["keys"]
    assert keys[0]["alg"] == "ES256" and "d" not in keys[0]


def test_every_other_route_needs_a_token(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = set(spec["paths"])
    assert paths - PUBLIC, "the scan found no protected route"
    for path in paths - PUBLIC:
        for method in spec["paths"][path]:
            url = server.url + path.replace("{case_id}", "x").replace("{item_id}", "x")
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = httpx.request(method, url, headers=headers)
                assert response.status_code == 401, (method, path)
                assert response.headers["content-type"] == "application/problem+json"
                if method != "head":  # a HEAD answer has headers only (RFC 9110 9.3.2)
                    assert response.json()["status"] == 401


def test_errors_are_problem_details(server: Server, case_id: str) -> None:
    with server.client("tina") as client:
        missing = client.get("/v1/items/nosuchitem")
        bad = client.post(
            f"/v1/cases/{case_id}/items", headers=to_headers({"kind": "x"}), content=b"a"
        )
        nowhere = client.get("/v1/nowhere")
    for response, status in ((missing, 404), (bad, 422), (nowhere, 404)):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status and body["title"] and body["detail"]


def test_raw_and_multipart_deposits_round_trip(server: Server, case_id: str) -> None:
    data = bytes(range(256)) * 4096 + b"tail"
    digest = hashlib.sha256(data).hexdigest()
    meta = {"kind": "document", "title": "Medical report", "consent": "therapy"}
    with server.client("tina") as client:
        raw = client.post(f"/v1/cases/{case_id}/items", headers=to_headers(meta), content=data)
        multi = client.post(
            f"/v1/cases/{case_id}/items",
            data=meta,
            files={"file": ("report.pdf", data, "application/pdf")},
        )
        for response in (raw, multi):
            assert response.status_code == 201, response.text
            assert response.json()["sha256"] == digest
            item_id = response.json()["id"]
            got = client.get(f"/v1/items/{item_id}/content")
            assert got.content == data
            assert got.headers["repr-digest"].startswith("sha-256=:")
        assert client.get(f"/v1/items/{multi.json()['id']}").json()["filename"] == "report.pdf"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"kind": "testimony", "title": "T", "consent": "therapy"}, 404),  # unknown case
        ({"kind": "rumour", "title": "T", "consent": "therapy"}, 422),
        ({"kind": "testimony", "title": "T", "consent": "gossip"}, 422),
        ({"kind": "testimony", "consent": "therapy"}, 422),  # no title
    ],
)
def test_refused_deposits_leave_nothing(
    server: Server, case_id: str, params: dict[str, str], status: int
) -> None:
    before = _state(server)
    target = "nosuchcase" if status == 404 else case_id
    with server.client("tina") as client:
        response = client.post(
            f"/v1/cases/{target}/items", headers=to_headers(params), content=b"x" * 100_000
        )
    assert response.status_code == status
    assert _state(server) == before


def test_multipart_fields_after_the_file_are_taken(server: Server, case_id: str) -> None:
    # Part order does not matter (issue 20 point 7): a field after the file part is checked
    # with the others when the body ends, and kept.
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\ntestimony\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nT\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
        "data\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="consent"\r\n\r\ntherapy\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="notes"\r\n\r\nlate\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    with server.client("tina") as client:
        response = client.post(
            f"/v1/cases/{case_id}/items",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 201, response.text
        item = client.get(f"/v1/items/{response.json()['id']}").json()
    assert (item["notes"], item["consent"]) == ("late", ["therapy"])


def test_only_therapists_deposit(server: Server, case_id: str) -> None:
    before = _state(server)
    with server.client("admin") as client:
        response = client.post(
            f"/v1/cases/{case_id}/items",
            headers=to_headers({"kind": "testimony", "title": "T", "consent": "therapy"}),
            content=b"x",
        )
    assert response.status_code == 403
    assert _state(server) == before


def _send_half_and_close(
    server: Server, path: str, body: bytes, content_type: str, fields: dict[str, str]
) -> None:
    url = urlparse(server.url)
    extra = "".join(f"{k}: {v}\r\n" for k, v in to_headers(fields).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {server.token('tina')}\r\n{extra}"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head)
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.5)  # let the server stream some of it into the store


def _refusals(server: Server) -> list[str]:
    """The causes of the vault's `deposit refused` ledger entries, in order."""
    with sqlite3.connect(server.home / "vault.db") as db:
        rows = db.execute(
            "SELECT entry FROM ledger_entries WHERE action = 'deposit refused' ORDER BY seq"
        ).fetchall()
    return [json.loads(row[0])["details"]["cause"] for row in rows]


def _multipart(size: int) -> tuple[bytes, str]:
    boundary = "tvaultboundary7d3"
    fields = {"kind": "testimony", "title": "T", "consent": "therapy"}
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = b"".join(parts) + head + b"y" * size + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("form", ["raw", "multipart"])
def test_a_client_that_disconnects_mid_upload_leaves_nothing(
    server: Server, case_id: str, form: str
) -> None:
    before = _state(server)
    path, fields = f"/v1/cases/{case_id}/items", {}
    if form == "raw":
        fields = {"kind": "testimony", "title": "T", "consent": "therapy"}
        body, content_type = b"y" * (8 * 1024 * 1024), "application/octet-stream"
    else:
        body, content_type = _multipart(8 * 1024 * 1024)
    refused = _refusals(server).count("interrupted")
    logged = server.log.read_text().count("deposit refused: interrupted")
    _send_half_and_close(server, path, body, content_type, fields)
    deadline = time.monotonic() + 10
    while _state(server) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _state(server) == before
    assert httpx.get(server.url + "/healthz").status_code == 200
    # One ledger entry and one log line for the interrupted deposit, never a traceback.
    while _refusals(server).count("interrupted") == refused and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _refusals(server).count("interrupted") == refused + 1
    log = server.log.read_text()
    assert log.count("deposit refused: interrupted") == logged + 1
    assert "Traceback" not in log


def test_over_the_limit_gets_413_and_leaves_nothing(tmp_path: Path) -> None:
    small = start_server(tmp_path / "small", TVAULT_MAX_UPLOAD_BYTES="100000")
    try:
        with small.client("tina") as client:
            case = client.post("/v1/cases", json={"name": "c"}).json()["id"]
            before = _state(small)
            meta = {"kind": "testimony", "title": "T", "consent": "therapy"}
            declared = client.post(
                f"/v1/cases/{case}/items", headers=to_headers(meta), content=b"z" * 100_001
            )

            def chunks() -> object:
                for _ in range(30):
                    yield b"z" * 10_000

            streamed = client.post(
                f"/v1/cases/{case}/items", headers=to_headers(meta), content=chunks()
            )
            multi = client.post(
                f"/v1/cases/{case}/items", data=meta, files={"file": ("f", b"z" * 200_000)}
            )
            for response in (declared, streamed, multi):
                assert response.status_code == 413, response.text
                assert response.headers["content-type"] == "application/problem+json"
            assert _state(small) == before
            assert _refusals(small) == ["too-large"] * 3
            # Answered from Content-Length alone: the headers go, the body never does.
            url = urlparse(small.url)
            assert url.hostname is not None and url.port is not None
            head = (
                f"POST /v1/cases/{case}/items HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Authorization: Bearer {small.token('tina')}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in to_headers(meta).items())
                + "Content-Length: 100001\r\n\r\n"
            )
            with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
                sock.sendall(head.encode())
                assert sock.recv(64).startswith(b"HTTP/1.1 413 ")
            assert _refusals(small) == ["too-large"] * 4
            exact = client.post(
                f"/v1/cases/{case}/items", headers=to_headers(meta), content=b"z" * 100_000
            )
            assert exact.status_code == 201
    finally:
        small.stop()


def test_fifty_concurrent_deposits_all_arrive(server: Server, case_id: str) -> None:
    import anyio

    token = server.token("tina")
    meta = {"kind": "media", "title": "clip", "consent": "therapy"}
    results: list[dict[str, object]] = []

    async def one(client: httpx.AsyncClient, n: int) -> None:
        body = n.to_bytes(4, "big") * 25_000  # 100 KB, different for each
        response = await client.post(
            f"/v1/cases/{case_id}/items", headers=to_headers(meta), content=body
        )
        assert response.status_code == 201, response.text
        assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()
        results.append(response.json())

    async def main() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=50)
        async with (
            httpx.AsyncClient(
                base_url=server.url, headers=headers, timeout=120, limits=limits
            ) as client,
            anyio.create_task_group() as group,
        ):
            for n in range(50):
                group.start_soon(one, client, n)

    anyio.run(main)
    assert len({r["id"] for r in results}) == 50
    with server.client("tina") as client:
        listed = {i["id"] for i in client.get(f"/v1/cases/{case_id}/items").json()}
    assert {r["id"] for r in results} <= listed


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_deposits_as_the_docs_show_and_downloads_with_a_safe_name(
    server: Server, case_id: str, tmp_path: Path
) -> None:
    # docs/usage.md: `curl -T FILE -X POST` streams the file; a bare `-T` (PUT) is refused
    # with 405 and stores nothing. No title: the file name is the title.
    source = tmp_path / "declaración.txt"
    source.write_bytes(b"what the curl user deposited\n")
    token = server.token("tina")
    url = f"{server.url}/v1/cases/{case_id}/items"
    base = ["curl", "-sS", "-T", str(source), "-H", f"Authorization: Bearer {token}"]
    meta = ["-H", "Tvault-Kind: document", "-H", "Tvault-Consent: therapy",
            "-H", "Tvault-Filename: ../declaraci%C3%B3n.txt"]  # fmt: skip
    before = _state(server)
    put = subprocess.run([*base, *meta, "-w", "%{http_code}", "-o", "/dev/null", url],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert put.stdout == "405"
    assert _state(server)[1] == before[1]
    posted = subprocess.run([*base, "-X", "POST", *meta, url],
                            capture_output=True, text=True, check=True)  # fmt: skip
    item = json.loads(posted.stdout)["id"]
    with server.client("tina") as client:
        assert client.get(f"/v1/items/{item}").json()["title"] == "../declaración.txt"
        got = client.get(f"/v1/items/{item}/content")
    assert got.content == source.read_bytes()
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"declaraci_n.txt\"; filename*=UTF-8''declaraci%C3%B3n.txt"
    )
