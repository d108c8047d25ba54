"""A `tvault worker` killed again and again: each crash charges only the jobs it interrupted.

DESIGN.md promise 6 and issue "A crash charges only the jobs it interrupted": a worker claims no
more than it starts, so a SIGKILL charges an attempt to the jobs in hand and to no other. Thirty
documents survive ten kills of the worker while it holds jobs (with five attempts a job, a
worker that held every waiting job charged them all at each kill and failed them for good), and
the next worker indexes them all with no custodian's help; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from sqlalchemy import and_, or_, select

from tests import corpus
from tests.unit.vault.conftest import PASSPHRASE, database_url, principal, vault
from vault import jobs
from vault.cases import create_case
from vault.db.jobs_tables import Job
from vault.deposit import Deposit
from vault.parts import Vault

# Fixtures: the vault, on SQLite and on PostgreSQL.
__all__ = ["database_url", "vault"]

pytestmark = pytest.mark.slow

DOCUMENTS = 30
KILLS = 10
LEASE_SECONDS = 2


def deposit(vault: Vault, folder: Path) -> list[str]:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    tina = principal(vault, "tina")  # now a member of the case
    ids = []
    for n in range(DOCUMENTS):
        path = corpus.text(folder, f"d{n}.txt", f"{corpus.SPANISH} Documento {n}.")
        fields = {"case": case_id, "kind": "document", "title": path.name, "consent": "therapy"}
        data = path.read_bytes()
        job = Deposit.start(vault, tina, fields, len(data))
        job.write(data)
        ids.append(job.commit().item_id)
    return ids


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def holds_jobs_or_failed(vault: Vault, pid: int) -> bool:
    """True if the worker process `pid` holds a job (its owner names its pid), or a job failed
    (then there may be nothing left to hold)."""
    holds = and_(Job.state == jobs.RUNNING, Job.lease_owner.contains(f":{pid}:"))
    query = select(Job.id).where(or_(holds, Job.state == jobs.FAILED))
    with vault.sessions() as session:
        return session.scalars(query).first() is not None


def test_ten_kills_leave_every_document_indexed(
    vault: Vault, tmp_path: Path, memory_scratch: Path
) -> None:
    items = deposit(vault, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
    env.update(
        {
            "TVAULT_HOME": str(vault.settings.home),
            "TVAULT_PASSPHRASE": PASSPHRASE,
            "TVAULT_SCRATCH_DIR": str(memory_scratch),
            "TVAULT_JOBS_POLL_SECONDS": "0.05",
            "TVAULT_JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
            "TVAULT_JOBS_BACKOFF_SECONDS": "0.1",
            "TVAULT_JOBS_MAX_ATTEMPTS": "5",
        }
    )
    if vault.settings.database_url is not None:
        env["TVAULT_DATABASE_URL"] = vault.settings.database_url
    command = [sys.executable, "-m", "vault.cli", "worker", "--concurrency", "1"]
    log = (tmp_path / "workers.log").open("wb")
    started: list[psutil.Process] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(psutil.Process(process.pid))
        return process

    try:
        for _ in range(KILLS):
            process = start()
            wait_for(
                lambda pid=process.pid: holds_jobs_or_failed(vault, pid),
                process,
                120,
                "the worker's jobs",
            )
            started += _children(started[-1])  # parser processes, killed at the end
            process.send_signal(signal.SIGKILL)
            process.wait()
        last = start()
        with vault.sessions() as session:

            def indexed() -> bool:
                states = jobs.ingest_states(session, items)
                session.rollback()  # a fresh snapshot next time
                return all(s.state == jobs.IngestState.INDEXED for s in states.values()) or any(
                    s.state == jobs.IngestState.FAILED for s in states.values()
                )

            wait_for(indexed, last, 180, "every document indexed")
        last.send_signal(signal.SIGTERM)
        last.wait(timeout=60)
    finally:
        for process in started:
            for child in [process, *_children(process)]:
                if child.is_running():
                    child.kill()
        log.close()

    with vault.sessions() as session:
        states = jobs.ingest_states(session, items)
        failed = jobs.list_jobs(session, states=[jobs.FAILED])
    assert failed == []
    assert {s.state for s in states.values()} == {jobs.IngestState.INDEXED}


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return list(process.children(recursive=True))
    except psutil.NoSuchProcess:
        return []
