"""The ingest pipeline end to end: `tvault ingest`, the embedded worker, states, `tvault jobs`.

A served vault (`tvault serve`, its worker thread) gets a folder of mixed documents through
`tvault ingest`; each item's state is followed over the API and `tvault status` until the
worker is done; failures carry their reason and can be retried. Then, after extraction has run,
every file under the vault and the server's log is searched for markers from the documents'
text (promise 1 extended to extracted text, with the scan of `tests/e2e/scan_support.py`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import corpus
from tests.e2e.conftest import Server, start_server, tvault
from tests.e2e.scan_support import every_file, findings

SETTLED = {"extracted", "indexed", "failed"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("ingest") / "vault"
    # Retries come quickly here, so a retried failure settles within the test.
    running = start_server(home, TVAULT_JOBS_BACKOFF_SECONDS="0", TVAULT_JOBS_MAX_ATTEMPTS="2")
    yield running
    running.stop()


def client_env(server: Server, name: str) -> dict[str, str]:
    return {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token(name)}


def wait_settled(server: Server, item_ids: list[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with server.client("tina") as client:
        while True:
            items = {i: client.get(f"/v1/items/{i}").json() for i in item_ids}
            if all(item["state"] in SETTLED for item in items.values()):
                return items
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled: {[i['state'] for i in items.values()]}")
            time.sleep(0.3)


def test_a_folder_is_ingested_extracted_and_its_failures_explained(
    served: Server, tmp_path: Path
) -> None:
    where = ("docx", "pdf", "txt", "doctitle", "docauthor")
    markers = {kind: f"{kind}mk{secrets.token_hex(8)}" for kind in where}
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    corpus.docx(
        folder,
        paragraphs=[f"{corpus.SPANISH} {markers['docx']}"],
        title=f"Testimonio {markers['doctitle']}",
        author=f"Autora {markers['docauthor']}",
    )
    corpus.pdf(folder / "sub", pages=[f"{corpus.ENGLISH} {markers['pdf']}"])
    corpus.text(folder, content=f"{corpus.SPANISH} {markers['txt']}")
    corpus.encrypted_pdf(folder)
    corpus.empty(folder)
    with served.client("tina") as client:
        case = client.post("/v1/cases", json={"name": "Ingest"}).json()["id"]
    env = client_env(served, "tina")

    done = tvault(
        "ingest",
        str(folder),
        "--case",
        case,
        "--consent",
        "therapy",
        "--json",
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert sorted(d["file"] for d in summary["deposited"]) == [
        "cifrado.pdf",
        "notas.txt",
        "sub/testimonio.pdf",
        "testimonio.docx",
    ]
    assert summary["failed"] == [{"file": "vacio.pdf", "reason": "empty file"}]
    again = ("ingest", str(folder / "sub"), "--case", case, "--consent", "therapy")
    human = tvault(*again, env=env)
    assert "deposited 0 of 1 files; 0 failed; 1 skipped as duplicates" in human.stdout
    first = {d["file"]: d["id"] for d in summary["deposited"]}["sub/testimonio.pdf"]
    assert f"skipped: testimonio.pdf: same SHA-256 as item {first}" in human.stdout

    ids = {d["file"]: d["id"] for d in summary["deposited"]}
    items = wait_settled(served, list(ids.values()))
    for name in ("notas.txt", "sub/testimonio.pdf", "testimonio.docx"):
        assert items[ids[name]]["state"] in {"extracted", "indexed"}, items[ids[name]]
        assert items[ids[name]]["state_reason"] is None
    # Deposited without a language; extraction detected one (in the parser process).
    detected = {name: items[ids[name]]["detected_language"] for name in ids}
    assert detected == {
        "notas.txt": "es",
        "sub/testimonio.pdf": "en",
        "testimonio.docx": "es",
        "cifrado.pdf": None,
    }
    assert all(items[ids[name]]["language"] is None for name in ids)
    with served.client("tina") as client:
        listed_items = client.get(f"/v1/cases/{case}/items").json()
    assert {i["id"]: i["state"] for i in listed_items if i["id"] in items} == {
        i: item["state"] for i, item in items.items()
    }
    failed = items[ids["cifrado.pdf"]]
    assert failed["state"] == "failed"
    assert "encrypted" in failed["state_reason"]

    # `tvault status` shows the state; `tvault jobs` lists and retries (custodians only).
    status = tvault("status", ids["cifrado.pdf"], env=env).stdout
    assert "state: failed" in status and "encrypted" in status
    assert "detected_language: es" in tvault("status", ids["notas.txt"], env=env).stdout
    with served.client("tina") as client:
        assert client.get("/v1/jobs").status_code == 403
        ingest = client.get(f"/v1/items/{ids['notas.txt']}/ingest").json()
        assert ingest["state"] in {"extracted", "indexed"}
    admin = client_env(served, "admin")
    listed = json.loads(tvault("jobs", "--failed", "--json", env=admin).stdout)
    assert [(j["item_id"], j["kind"]) for j in listed] == [(ids["cifrado.pdf"], "extract")]
    assert "encrypted" in listed[0]["last_error"]
    human_jobs = tvault("jobs", "--failed", env=admin).stdout
    assert listed[0]["id"] in human_jobs and "failed" in human_jobs and "encrypted" in human_jobs
    retried = json.loads(tvault("jobs", "--retry", listed[0]["id"], "--json", env=admin).stdout)
    assert (retried["state"], retried["attempts"]) == ("queued", 0)
    # A malformed id is a usage error before any request; a well-formed unknown one is a 404.
    malformed = tvault("jobs", "--retry", "nosuchjob", env=admin, check=False)
    assert malformed.returncode == 2 and "is not a job id" in malformed.stderr
    unknown = tvault("jobs", "--retry", "a" * 26, env=admin, check=False)
    assert unknown.returncode == 1 and "404" in unknown.stderr
    assert wait_settled(served, [ids["cifrado.pdf"]])[ids["cifrado.pdf"]]["state"] == "failed"

    # Promise 1 after extraction: no marker of the extracted text anywhere at rest or in the log.
    assert findings(every_file(served.home, served.log), markers) == []
    # The worker's plaintext copies are gone (its private directory, under /dev/shm, is empty).
    pattern = f"tvault-worker-{served.process.pid}-*/**/*"
    leftovers = [p for p in Path("/dev/shm").glob(pattern) if p.is_file()]
    assert leftovers == []


def test_usage_errors(tmp_path: Path) -> None:
    env = {"TVAULT_HOME": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"}
    unknown = tvault("worker", "--kind", "nosuchstage", env=env, check=False)
    assert unknown.returncode == 2 and "no stage nosuchstage" in unknown.stderr
    (tmp_path / "empty").mkdir()
    empty = tvault(
        "ingest",
        str(tmp_path / "empty"),
        "--case",
        "a" * 26,  # well-formed: a malformed id is refused before the directory is read
        "--consent",
        "therapy",
        env={**env, "TVAULT_TOKEN": "x"},
        check=False,
    )
    assert empty.returncode == 2 and "no files" in empty.stderr
