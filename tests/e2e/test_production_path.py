"""The production path on one machine: PostgreSQL, the TLS S3 test server, `tvault serve` and two
`tvault worker` processes (issue 21 points 2 and 3).

- Every process indexes and every process expands `tortur*` and `Mamani~1` against the words
  all of them indexed, through the server, without a restart (the shared vocabulary).
- The whole flow: signed PDF and DOCX deposits, extraction and indexing, search,
  download, consent withdrawal, a shred with its two-person approval, a checkpoint, `tvault
  verify` clean; then one flipped byte in a stored S3 object and `tvault verify` exit 1 naming
  the item.

Processes are paused with SIGSTOP to decide which one takes a job; a paused process holds no
job (every earlier job is done before it is paused).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import keys
from tests import corpus
from tests.e2e.conftest import (
    Server,
    provision,
    serve,
    settled,
    start_worker,
    stop_process,
    tvault,
)
from tests.s3server import S3Server, admin_client, moto_s3, s3_bucket
from vault import credentials
from vault.accounts import add_user
from vault.db import Item
from vault.deposit import Deposit
from vault.headers import to_headers
from vault.parts import Vault

__all__ = ["moto_s3", "s3_bucket"]  # fixtures, registered by importing them

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


class Cluster:
    """A served vault, its worker processes, and the same vault opened in the test process."""

    def __init__(
        self, home: Path, settings: dict[str, str], *, embedded_worker: bool, workers: int
    ) -> None:
        env, self.vault = provision(
            home,
            TVAULT_JOBS_POLL_SECONDS="0.1",
            TVAULT_EMBEDDED_WORKER=str(embedded_worker).lower(),
            TVAULT_SEARCH_HELPER="false",
            TVAULT_AUTH_FAILURE_BURST="100000",
            **settings,
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        self.server: Server | None = None
        # Started side by side: on a loaded machine each start takes seconds.
        with ThreadPoolExecutor(workers + 1) as pool:
            served = pool.submit(serve, home, env)
            started = [pool.submit(start_worker, home, env, f"worker-{n}") for n in range(workers)]
            for future in started:
                with contextlib.suppress(Exception):
                    self.workers.append(future.result())
            with contextlib.suppress(Exception):
                self.server = served.result()
        if self.server is None or len(self.workers) < workers:
            self.close()
            served.result()
            for future in started:
                future.result()

    def log(self, process: subprocess.Popen[bytes]) -> str:
        assert self.server is not None
        name = (
            "server" if process is self.server.process else f"worker-{self.workers.index(process)}"
        )
        return (self.server.home.parent / f"vault-{name}.log").read_text(errors="replace")

    def done_lines(self, stage: str, item: str) -> int:
        """Return how many processes' logs say `stage` of `item` is done, once any says so
        (waiting up to 10 s for the first: a worker logs just after its commit)."""
        assert self.server is not None
        pattern = rf"\({stage}, item {item}\) done"
        deadline = time.monotonic() + 10
        while True:
            logs = "".join(self.log(p) for p in (self.server.process, *self.workers))
            found = len(re.findall(pattern, logs))
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def add_user(self, name: str, role: str) -> None:
        with self.vault.sessions.begin() as session:
            add_user(session, name, role, self.vault.clock())

    def client(self, name: str) -> httpx.Client:
        assert self.server is not None
        token = credentials.issue(self.vault, name, ttl_seconds=3600).token
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def close(self) -> None:
        processes = [*([self.server.process] if self.server else []), *self.workers]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
        try:
            codes = [stop_process(worker) for worker in self.workers]
        finally:
            if self.server is not None:
                self.server.stop()
            self.vault.close()
        assert codes == [0] * len(codes), codes  # SIGTERM: each stopped cleanly


@pytest.fixture
def production(pg_schema_url: str, moto_s3: S3Server, s3_bucket: str) -> dict[str, str]:
    settings = {
        "TVAULT_DATABASE_URL": pg_schema_url,
        "TVAULT_OBJECT_STORE": "s3",
        "TVAULT_S3_ENDPOINT": moto_s3.endpoint,
        "TVAULT_S3_ACCESS_KEY": moto_s3.access_key,
        "TVAULT_S3_SECRET_KEY": moto_s3.secret_key,
        "TVAULT_S3_BUCKET": s3_bucket,
        "TVAULT_S3_SECURE": "true",
        "TVAULT_S3_OBJECT_LOCK": "true",
        "TVAULT_S3_RETENTION_DAYS": "1",
    }
    if moto_s3.ca_file is not None:
        settings["TVAULT_S3_CA_FILE"] = str(moto_s3.ca_file)
    return settings


def _hits(client: httpx.Client, query: str) -> set[str]:
    answer = client.post("/v1/search", json={"q": query, "page_size": 100})
    assert answer.status_code == 200, answer.text
    return {hit["item_id"] for hit in answer.json()["hits"]}


def _indexed(vault: Vault, item_id: str) -> bool:
    from vault import jobs

    with vault.sessions() as session:
        return jobs.ingest_states(session, [item_id])[item_id].state.value == "indexed"


def _wait(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _deposit_here(cluster: Cluster, case: str, text: str) -> str:
    """Deposit a text item from the test process (the server may be paused)."""
    from tests.unit.vault.conftest import principal

    data = text.encode()
    fields = {"case": case, "kind": "testimony", "title": "T", "consent": "therapy"}
    job = Deposit.start(cluster.vault, principal(cluster.vault, "tina"), fields, len(data))
    job.write(data)
    return job.commit().item_id


def _done_by(log: str, item: str) -> bool:
    return re.search(rf"\(index, item {item}\) done", log) is not None


def _every_process_indexes_and_finds_the_others_words(shared: Cluster) -> None:
    """The server, then the first worker, then the second, each alone, index a new name; the
    server, never restarted, then finds all three by prefix and by edit distance."""
    assert shared.server is not None
    server, (first, second) = shared.server.process, shared.workers
    with shared.client("tina") as tina:
        case = tina.post("/v1/cases", json={"name": "Vocabulary"}).json()["id"]
        # 1. The server alone indexes; a first fuzzy search loads its vocabulary.
        for process in (first, second):
            process.send_signal(signal.SIGSTOP)
        meta = {"kind": "testimony", "title": "T", "consent": "therapy"}
        body = "El capitán Mamani ordenó la tortura en el cuartel."
        made = tina.post(f"/v1/cases/{case}/items", headers=to_headers(meta), content=body)
        by_server = made.json()["id"]
        assert settled(tina, by_server)["state"] == "indexed"
        assert _hits(tina, "Mamani~1") == _hits(tina, "tortur*") == {by_server}

        # 2. The first worker alone, then 3. the second alone, each indexes a new name.
        server.send_signal(signal.SIGSTOP)
        try:
            first.send_signal(signal.SIGCONT)
            by_first = _deposit_here(shared, case, "Declaró que Mamany lo torturaron de noche.")
            _wait(lambda: _indexed(shared.vault, by_first), "the first worker")
            first.send_signal(signal.SIGSTOP)
            second.send_signal(signal.SIGCONT)
            by_second = _deposit_here(shared, case, "Mamami vio cómo torturaban a su hermano.")
            _wait(lambda: _indexed(shared.vault, by_second), "the second worker")
        finally:
            for process in (server, first):
                process.send_signal(signal.SIGCONT)
        # The same server process, not restarted, finds all three by prefix and by edit distance.
        everyone = {by_server, by_first, by_second}
        assert _hits(tina, "Mamani~1") == everyone
        assert _hits(tina, "tortur*") == everyone
        assert _hits(tina, "nocHe") == {by_first}  # and plain words, as ever
    assert _done_by(shared.log(server), by_server)
    assert _done_by(shared.log(first), by_first)
    assert _done_by(shared.log(second), by_second)


def _signed_deposit(
    client: httpx.Client, case: str, path: Path, kind: str, key: tuple[str, str]
) -> tuple[str, bytes]:
    private, public = key
    body = path.read_bytes()
    origin = client.get("/v1/signatures/origin").json()["origin"]
    statement = keys.canonical_json(
        {
            "origin": origin,
            "case": case,
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "filename": path.name,
            "kind": kind,
            "consent": ["legal", "therapy"],
            "key_id": keys.key_id(public),
            "signed_at": "2026-12-07T09:00:00Z",
        }
    )
    signature = keys.sign(statement, private)
    meta = {"kind": kind, "title": "T", "consent": "legal,therapy", "filename": path.name}
    made = client.post(
        f"/v1/cases/{case}/items",
        content=body,
        headers={
            **to_headers(meta),
            "Content-Type": "application/octet-stream",
            "Tvault-Statement": base64.b64encode(statement).decode(),
            "Tvault-Signature": base64.b64encode(signature.encode()).decode(),
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["sha256"] == hashlib.sha256(body).hexdigest()
    return made.json()["id"], body


@pytest.fixture
def flow(tmp_path: Path, production: dict[str, str]) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "vault", production, embedded_worker=True, workers=2)
    try:
        yield cluster
    finally:
        cluster.close()


# One cluster for both parts: each start of three processes takes a minute on a loaded machine.
def test_the_production_path_with_a_server_and_two_workers(
    flow: Cluster, tmp_path: Path, moto_s3: S3Server, s3_bucket: str
) -> None:
    _every_process_indexes_and_finds_the_others_words(flow)
    flow.add_user("lena", "lawyer")
    flow.add_user("cleo", "custodian")
    flow.add_user("audrey", "auditor")
    key = keys.generate_signing_key()
    pdf = corpus.pdf(tmp_path, "declaracion.pdf", ["Mamani ordenó la tortura en la comisaría."])
    docx = corpus.docx(tmp_path, "informe.docx", ["Quispe fue torturado en el cuartel."])
    with flow.client("admin") as admin, flow.client("tina") as tina, flow.client("lena") as lena:
        case = tina.post("/v1/cases", json={"name": "Production"}).json()["id"]
        granted = admin.post(f"/v1/cases/{case}/grants", json={"user": "lena", "role": "lawyer"})
        assert granted.status_code == 204, granted.text
        registered = admin.post("/v1/users/tina/keys", json={"public_key": key[1]})
        assert registered.status_code == 201, registered.text
        pdf_item, pdf_body = _signed_deposit(tina, case, pdf, "testimony", key)
        docx_item, _ = _signed_deposit(tina, case, docx, "document", key)
        for item in (pdf_item, docx_item):
            assert settled(tina, item)["state"] == "indexed"
            assert len(tina.get(f"/v1/items/{item}/signatures").json()) == 1
        # Extracted and indexed once each, by one of the three processes (a worker logs a job
        # just after its commit, so the line may trail the state by a moment).
        assert flow.server is not None
        for item in (pdf_item, docx_item):
            for stage in ("extract", "index"):
                assert flow.done_lines(stage, item) == 1
        assert _hits(lena, "tortur*") == {pdf_item, docx_item}
        assert _hits(lena, "comisaria") == {pdf_item}
        found = lena.post("/v1/search", json={"q": "Quispe"}).json()["hits"]
        assert [h["item_id"] for h in found] == [docx_item] and "<mark>" in found[0]["snippet"]
        assert lena.get(f"/v1/items/{pdf_item}/content").content == pdf_body

        # Consent withdrawn: the lawyer's next request no longer reaches the item.
        withdrawn = tina.post(
            f"/v1/items/{pdf_item}/consent",
            json={"withdraw": ["legal"], "basis": "depositor_confirmation"},
        )
        assert withdrawn.status_code == 201, withdrawn.text
        assert lena.get(f"/v1/items/{pdf_item}/content").status_code == 404
        assert _hits(lena, "tortur*") == {docx_item}

        # Shredding: asked by one custodian, done on the approval of another.
        asked = admin.post(f"/v1/items/{docx_item}/shred", json={"reason": "consent_withdrawn"})
        assert asked.status_code == 202, asked.text
        assert tina.get(f"/v1/items/{docx_item}/content").status_code == 200  # not yet
        with flow.client("cleo") as cleo:
            approved = cleo.post(f"/v1/approvals/{asked.json()['id']}/approve")
            assert approved.status_code == 200, approved.text
        assert tina.get(f"/v1/items/{docx_item}/content").status_code == 404
        assert _hits(tina, "Quisp*") == set()

        with flow.client("audrey") as audrey:
            checkpoint = audrey.post("/v1/ledger/checkpoints")
            assert checkpoint.status_code == 201, checkpoint.text

    assert flow.server is not None
    env = flow.server.env
    clean = tvault("verify", "--json", env=env, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["ok"] is True

    # One flipped byte in the stored original (a new version of the object, as S3 allows under
    # object lock): verify names the item and exits 1.
    with flow.vault.sessions() as session:
        name = session.scalar(select(Item.object_name).where(Item.id == pdf_item))
    assert name is not None
    with admin_client(moto_s3) as s3:
        stored = s3.get_object(s3_bucket, name)
        try:
            data = bytearray(stored.read())
        finally:
            stored.close()
            stored.release_conn()
        data[len(data) // 2] ^= 0x01
        s3.put_object(s3_bucket, name, io.BytesIO(bytes(data)), len(data))
    broken = tvault("verify", env=env, check=False)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert pdf_item in broken.stdout + broken.stderr
    assert docx_item not in broken.stdout + broken.stderr
