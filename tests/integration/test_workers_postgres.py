"""Standalone `tvault worker` processes on PostgreSQL: scale-out and a worker killed mid-job.

Two worker processes share one queue (`FOR UPDATE SKIP LOCKED`): every job is done exactly once
and none is lost, counted by the `metadata extraction` ledger entries, which commit in the same
transaction as the job's completion. A worker killed with SIGKILL in the middle of an extraction
leaves its job to the next worker once the lease expires; the job then completes exactly once,
and the dead worker's plaintext copy is swept.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, func, select, text

from tests import corpus
from tests.unit.vault.conftest import FAST_KDF, principal
from vault import extraction, jobs, ledger
from vault.accounts import add_user
from vault.cases import create_case
from vault.db.jobs_tables import ItemText, Job
from vault.deposit import Deposit
from vault.parts import Vault
from vault.provision import create_vault
from vault.settings import load_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSPHRASE = "workers test passphrase"


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    schema = f"workers_{secrets.token_hex(6)}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def vault(tmp_path: Path, schema_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vault]:
    for name in list(os.environ):
        if name.startswith("TVAULT_") and not name.startswith("TVAULT_TEST_"):
            monkeypatch.delenv(name)
    settings = load_settings(tmp_path / "vault", database_url=schema_url)
    created = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
    with created.sessions.begin() as session:
        add_user(session, "tina", "therapist", created.clock())
    yield created
    created.close()


def deposit_files(vault: Vault, paths: list[Path]) -> list[str]:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    ids = []
    for path in paths:
        data = path.read_bytes()
        fields = {"case": case_id, "kind": "document", "title": path.name, "consent": "therapy"}
        job = Deposit.start(vault, principal(vault, "tina"), fields, len(data))
        job.write(data)
        ids.append(job.commit().item_id)
    return ids


class Workers:
    """`tvault worker` subprocesses; every process they started is killed at the end."""

    def __init__(self, vault: Vault, log_dir: Path, **settings: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        self.env.update(
            {
                "TVAULT_HOME": str(vault.settings.home),
                "TVAULT_PASSPHRASE": PASSPHRASE,
                "TVAULT_DATABASE_URL": str(vault.settings.database_url),
                "TVAULT_JOBS_POLL_SECONDS": "0.1",
                **settings,
            }
        )
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.descendants: list[psutil.Process] = []

    def start(self) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"worker-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vault.cli", "worker", "--kind", "extract"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def log(self, n: int) -> str:
        return (self.log_dir / f"worker-{n}.log").read_text(errors="replace")

    def remember_children(self, process: subprocess.Popen[bytes]) -> None:
        self.descendants += psutil.Process(process.pid).children(recursive=True)

    def stop(self) -> list[int | None]:
        codes = []
        for process in self.processes:
            if process.poll() is None:
                self.remember_children(process)
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=60))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        for child in self.descendants:  # parser processes orphaned by a SIGKILL
            if child.is_running():
                child.kill()
        return codes


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def states(vault: Vault) -> dict[str, int]:
    with vault.sessions() as session:
        return jobs.counts(session)


def extraction_entries(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [
            e for e in ledger.entries(session) if e.action == ledger.actions.METADATA_EXTRACTION
        ]


def test_two_workers_do_every_job_exactly_once(vault: Vault, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    paths = []
    for n in range(24):
        sentence = f"{corpus.SPANISH} Documento {n} {secrets.token_hex(4)}."
        make = (corpus.text, corpus.docx, corpus.pdf)[n % 3]
        if make is corpus.text:
            paths.append(corpus.text(folder, f"d{n}.txt", sentence))
        elif make is corpus.docx:
            paths.append(corpus.docx(folder, f"d{n}.docx", [sentence]))
        else:
            # 60 pages: a few tenths of a second to parse. A worker's threads run up to eight
            # jobs a batch, so one worker could take all 24 small ones; it takes no more into a
            # batch after `extraction.HOLD_SECONDS`, and these slower documents make sure that
            # happens, so the other worker takes part.
            paths.append(corpus.pdf(folder, f"d{n}.pdf", [sentence] * 60))
    workers = Workers(vault, tmp_path)
    try:
        workers.start()
        workers.start()
        # Both polling before the first job exists, so neither has a head start.
        wait_for(lambda: all(" started: " in workers.log(n) for n in (0, 1)), 120, "both workers")
        items = deposit_files(vault, paths)
        wait_for(lambda: states(vault).get(jobs.DONE) == 24, 300, "24 jobs")
    finally:
        codes = workers.stop()
    assert codes == [0, 0]  # SIGTERM: both stopped cleanly

    entries = extraction_entries(vault)
    assert sorted(e.item_id for e in entries) == sorted(items)  # each item once, none lost
    with vault.sessions() as session:
        rows = session.scalars(select(Job).where(Job.kind == jobs.EXTRACT)).all()
        assert {(j.state, j.attempts) for j in rows} == {(jobs.DONE, 1)}  # never claimed twice
        assert session.scalar(select(func.count()).select_from(ItemText)) == 24
        # The next stage was queued once per item.
        assert session.scalar(select(func.count()).where(Job.kind == jobs.INDEX)) == 24
    assert len(list(vault.store.names(extraction.PREFIX))) == 24
    # Both processes took part (each logs the jobs it completed).
    done = [len(re.findall(r"job \S+ \(extract, item \S+\) done", workers.log(n))) for n in (0, 1)]
    assert sum(done) == 24 and min(done) > 0, done


def test_a_worker_killed_mid_job_leaves_it_to_the_next(
    vault: Vault, tmp_path: Path, memory_scratch: Path
) -> None:
    # A long PDF, so the extraction runs for seconds: long enough to kill the worker in it.
    pages = [f"{corpus.SPANISH} {corpus.ENGLISH} página {n}" * 3 for n in range(1200)]
    [item] = deposit_files(vault, [corpus.pdf(tmp_path, "largo.pdf", pages)])
    scratch = memory_scratch
    workers = Workers(
        vault, tmp_path, TVAULT_JOBS_LEASE_SECONDS="3", TVAULT_SCRATCH_DIR=str(scratch)
    )
    try:
        first = workers.start()

        def plaintext_copies() -> list[Path]:
            return [p for p in scratch.glob(f"tvault-worker-{first.pid}-*/*/*") if p.is_file()]

        # Mid-job: the job is the first worker's and its plaintext copy is being parsed.
        wait_for(lambda: plaintext_copies() != [], 120, "the first worker to start parsing")
        with vault.sessions() as session:
            job = session.scalars(
                select(Job).where(Job.item_id == item, Job.kind == "extract")
            ).one()
            assert job.state == jobs.RUNNING and f":{first.pid}:" in str(job.lease_owner)
        workers.remember_children(first)
        first.send_signal(signal.SIGKILL)
        first.wait()
        # No `finally` ran: the plaintext copy is still there, in the dead worker's 0700 dir.
        assert plaintext_copies() != []
        assert extraction_entries(vault) == []

        second = workers.start()
        wait_for(lambda: states(vault).get(jobs.DONE) == 1, 300, "the job to complete")
        assert second.poll() is None
    finally:
        workers.stop()
    # The second worker swept what the dead one left.
    assert plaintext_copies() == []
    [entry] = extraction_entries(vault)
    assert entry.item_id == item and entry.details["attempt"] == 2
    with vault.sessions() as session:
        job = session.scalars(select(Job).where(Job.item_id == item, Job.kind == "extract")).one()
        assert (job.state, job.attempts) == (jobs.DONE, 2)
        link = session.get(ItemText, item)
        assert link is not None and link.object_name == extraction.text_object_name(item, 2)
    assert list(vault.store.names(extraction.PREFIX)) == [link.object_name]
    text_out = extraction.read_text(vault, item)
    assert text_out is not None and "página 1199" in text_out
