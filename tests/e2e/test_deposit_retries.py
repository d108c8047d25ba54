"""Deposits that survive a flaky network and an interrupted `tvault ingest`, stored once.

A real `tvault serve` (SQLite, and PostgreSQL) sits behind a loopback proxy that loses chosen
responses after the server has committed (tests/proxy.py). `tvault deposit` must retry by itself
and print the item the first attempt stored; `tvault ingest`, killed while a deposit's answer is
lost, must resume when run again without storing any file twice, skipping duplicates unless
`--allow-duplicates` (issue 20 point 6, issue 23 point 4). A key whose upload is still streaming
is refused with 409 over real HTTP, then answered with the first item once it committed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import TVAULT, Server, start_server, tvault
from tests.proxy import CUT, HOLD, proxied

pytestmark = pytest.mark.timeout(600)


def _start(root: Path, **settings: str) -> Server:
    quiet = {"TVAULT_EMBEDDED_WORKER": "false", "TVAULT_SEARCH_HELPER": "false"}
    return start_server(root / "vault", **quiet, **settings)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A served vault on SQLite."""
    running = _start(tmp_path_factory.mktemp("retries"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def served_pg(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A served vault on PostgreSQL, in a schema of its own."""
    schema = f"retries_{secrets.token_hex(6)}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    running = _start(tmp_path_factory.mktemp("retries-pg"), TVAULT_DATABASE_URL=url)
    yield running
    running.stop()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


TOKENS: dict[str, str] = {}


def _env(server: Server, url: str | None = None) -> dict[str, str]:
    # One token per server: each `tvault token` opens the keyring (seconds on a loaded machine).
    token = TOKENS.get(server.url) or TOKENS.setdefault(server.url, server.token("tina"))
    return {**server.env, "TVAULT_URL": url or server.url, "TVAULT_TOKEN": token}


def _client(server: Server) -> httpx.Client:
    headers = {"Authorization": f"Bearer {_env(server)['TVAULT_TOKEN']}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def _case(server: Server) -> str:
    with _client(server) as client:
        made: str = client.post("/v1/cases", json={"name": "Retries"}).json()["id"]
    return made


def _items(server: Server, case: str) -> dict[str, str]:
    """Item id -> SHA-256 of every item of `case`."""
    with _client(server) as client:
        rows: list[dict[str, Any]] = client.get(f"/v1/cases/{case}/items").json()
    return {row["id"]: row["sha256"] for row in rows}


def test_a_deposit_whose_answer_is_lost_is_retried_and_stored_once(
    served: Server, tmp_path: Path
) -> None:
    case = _case(served)
    testimony = tmp_path / "testimonio.txt"
    testimony.write_bytes(secrets.token_bytes(300_000))
    with proxied(int(served.url.rsplit(":", 1)[1]), {1: CUT}) as proxy:
        done = tvault(
            "deposit", str(testimony), "--case", case, "--consent", "therapy", "--json",
            env=_env(served, proxy.url),
        )  # fmt: skip
    assert proxy.cut.is_set()  # the first answer was lost after the commit
    assert "connection lost" in done.stderr and "retrying" in done.stderr
    answer = json.loads(done.stdout)
    assert _items(served, case) == {answer["id"]: answer["sha256"]}  # the first item, once


def _folder(root: Path, known: bytes) -> Path:
    """Six files, in this order: a copy of `known`, b, c, d, e (a copy of b), f."""
    folder = root / "carpeta"
    folder.mkdir()
    b = secrets.token_bytes(50_000)
    contents = {"a": known, "b": b, "c": b"c" * 40_000, "d": b"d" * 30_000, "e": b, "f": b"f" * 9}
    for name, data in contents.items():
        (folder / f"{name}.txt").write_bytes(data)
    return folder


def _interrupted_ingest(served: Server, case: str, folder: Path, *options: str) -> str:
    """Run `tvault ingest` through a proxy that holds the third answer; kill it meanwhile.

    Returns the id of the item the vault stored for that third file (its answer never came).
    """
    before = set(_items(served, case))
    command = [*TVAULT, "ingest", str(folder), "--case", case, "--consent", "therapy", *options]
    with proxied(int(served.url.rsplit(":", 1)[1]), {3: HOLD}) as proxy:
        process = subprocess.Popen(
            command,
            env=_env(served, proxy.url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert proxy.held.wait(120), "the third deposit never answered"
        finally:
            process.kill()
            process.wait()
    third = hashlib.sha256((folder / "c.txt").read_bytes()).hexdigest()
    [in_flight] = [i for i, s in _items(served, case).items() if i not in before and s == third]
    return in_flight


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_interrupted_ingest_resumes_skipping_duplicates(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    served: Server = request.getfixturevalue("served" if database == "sqlite" else "served_pg")
    case = _case(served)
    known = secrets.token_bytes(20_000)
    with _client(served) as client:
        headers = {"Tvault-Kind": "document", "Tvault-Consent": "therapy", "Tvault-Title": "x"}
        first = client.post(f"/v1/cases/{case}/items", content=known, headers=headers).json()["id"]
    folder = _folder(tmp_path, known)
    # Answers: a (refused as a duplicate), b (stored), c (stored, its answer held: killed).
    in_flight = _interrupted_ingest(served, case, folder)

    done = tvault("ingest", str(folder), "--case", case, "--consent", "therapy", "--json",
                  env=_env(served))  # fmt: skip
    summary = json.loads(done.stdout)
    ids = {d["file"]: d["id"] for d in summary["deposited"]}
    assert sorted(ids) == ["b.txt", "c.txt", "d.txt", "f.txt"]
    assert ids["c.txt"] == in_flight  # resent under its key: the vault answered the first item
    assert [d["file"] for d in summary["deposited"] if d.get("earlier_run")] == ["b.txt"]
    assert summary["skipped"] == [
        {"file": "a.txt", "duplicate_of": first},
        {"file": "e.txt", "duplicate_of": ids["b.txt"]},
    ]
    items = _items(served, case)
    assert sorted(items) == sorted([first, *ids.values()])  # nothing stored twice
    assert len(set(items.values())) == len(items)
    # A complete run removes its record; it never named a file.
    records = list((Path(served.env["XDG_STATE_HOME"]) / "tvault" / "ingest").glob("*.json"))
    assert records == []


def test_an_interrupted_ingest_with_duplicates_allowed_stores_each_file_once(
    served: Server, tmp_path: Path
) -> None:
    case = _case(served)
    known = secrets.token_bytes(20_000)
    with _client(served) as client:
        headers = {"Tvault-Kind": "document", "Tvault-Consent": "therapy", "Tvault-Title": "x"}
        client.post(f"/v1/cases/{case}/items", content=known, headers=headers)
    folder = _folder(tmp_path, known)
    # Answers: a, b, c (held: killed), each stored.
    in_flight = _interrupted_ingest(served, case, folder, "--allow-duplicates")
    records = list((Path(served.env["XDG_STATE_HOME"]) / "tvault" / "ingest").glob("*.json"))
    [record] = records
    kept = record.read_text()
    assert "a.txt" not in kept and "carpeta" not in kept  # digests and ids, no names

    done = tvault("ingest", str(folder), "--case", case, "--consent", "therapy", "--json",
                  "--allow-duplicates", env=_env(served))  # fmt: skip
    summary = json.loads(done.stdout)
    ids = {d["file"]: d["id"] for d in summary["deposited"]}
    assert sorted(ids) == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"]
    assert ids["c.txt"] == in_flight
    assert summary["skipped"] == []
    assert len(_items(served, case)) == 1 + 6  # the earlier item and each file once
    assert not record.exists()


def test_a_key_in_flight_is_refused_with_409_until_its_deposit_commits(served: Server) -> None:
    case = _case(served)
    key = {"Idempotency-Key": '"in-flight-key"', "Tvault-Kind": "document"}
    headers = {**key, "Tvault-Consent": "therapy", "Tvault-Title": "x"}
    go_on, started = threading.Event(), threading.Event()
    answers: list[httpx.Response] = []

    def body() -> Iterator[bytes]:
        yield b"first half of a long upload; "
        started.set()
        go_on.wait(60)
        yield b"second half"

    def upload() -> None:
        with _client(served) as client:
            answers.append(client.post(f"/v1/cases/{case}/items", content=body(), headers=headers))

    first = threading.Thread(target=upload)
    first.start()
    try:
        assert started.wait(60)
        with _client(served) as client:
            # An empty body: should it come before the upload's claim, it is refused (empty
            # file) and frees the key again; once the upload holds the key, it gets 409.
            for _ in range(100):
                probe = client.post(f"/v1/cases/{case}/items", content=b"", headers=headers)
                if probe.status_code == 409:
                    break
                time.sleep(0.1)
        assert probe.status_code == 409
        assert probe.json()["type"] == "urn:tvault:problem:idempotency-in-flight"
    finally:
        go_on.set()
        first.join(60)
    [answer] = answers
    assert answer.status_code == 201
    with _client(served) as client:
        again = client.post(
            f"/v1/cases/{case}/items",
            content=b"first half of a long upload; second half",
            headers=headers,
        )
    assert again.status_code == 201 and again.content == answer.content
    assert list(_items(served, case)) == [answer.json()["id"]]
