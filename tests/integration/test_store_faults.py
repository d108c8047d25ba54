"""A full or read-only store says so (issue 23 point 3), on real small file systems.

The object store (and, in one test, the SQLite database) lives on a tmpfs of a few MiB mounted
for the test, filled to the last page or remounted read-only: every ENOSPC and EROFS here comes
from the kernel. A deposit then gets 507 or 503 with Retry-After as an RFC 9457 problem naming
the cause, a `deposit refused` ledger entry, and nothing left behind; `/readyz` names the
store's state; a worker gives the jobs back uncharged and finishes them by itself once there
is room again. Mounting needs root: without it the tests are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from starlette.exceptions import StarletteDeprecationWarning

from tests import corpus
from tests.unit.vault.conftest import FAST_KDF, PASSPHRASE, database_url, principal, vault
from tests.unit.vault.tokens import token_for
from vault import compose, jobs, ledger
from vault.accounts import add_user
from vault.cases import create_case
from vault.compose import app_of
from vault.db import Item
from vault.deposit import Deposit
from vault.parts import Vault
from vault.provision import create_vault
from vault.settings import load_settings
from vault.worker import Worker

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

# Fixtures: the vault, on SQLite and on PostgreSQL.
__all__ = ["database_url", "vault"]

pytestmark = pytest.mark.slow

SIZE = "4m"
HEADERS = {"Tvault-Kind": "testimony", "Tvault-Title": "T", "Tvault-Consent": "therapy"}


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def tmpfs_at(directory: Path, size: str = SIZE) -> Iterator[Path]:
    """Mount a fresh tmpfs of `size` on `directory`, keeping what it held; unmount after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    saved = directory.with_name(directory.name + ".saved")
    directory.rename(saved)
    directory.mkdir(mode=0o700)
    try:
        _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        directory.rmdir()
        saved.rename(directory)
        pytest.skip(f"this machine refuses a tmpfs mount: {exc}")
    try:
        shutil.copytree(saved, directory, dirs_exist_ok=True, symlinks=True)
        yield directory
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("mount", "-o", "remount,rw", str(directory))
        _run("umount", "--lazy", str(directory))
        directory.rmdir()
        shutil.rmtree(saved)


def fill(directory: Path) -> Path:
    """Write a file in `directory` until the kernel answers ENOSPC; return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\xff" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_store(vault: Vault) -> Iterator[Path]:
    """The vault's object store on a tmpfs of `SIZE`."""
    with tmpfs_at(vault.settings.objects_path) as mounted:
        yield mounted


@pytest.fixture
def client(vault: Vault) -> Iterator[TestClient]:
    # No `with`: no lifespan, so no embedded worker competes with the tests' own.
    token = token_for(vault, "tina", "therapist")
    yield TestClient(
        app_of(vault),
        base_url="http://vault.test",
        headers={"Authorization": f"Bearer {token}"},
    )


def refusals(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [e for e in ledger.entries(session) if e.action == ledger.actions.DEPOSIT_REFUSED]


def items(vault: Vault) -> int:
    with vault.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Item)) or 0)


def leftovers(store: Path) -> list[Path]:
    """Files of the store other than committed objects and the filler: temp files, parts."""
    tmp = store / ".tmp"
    return [p for p in tmp.iterdir() if p.name != ".lock"] if tmp.exists() else []


def test_a_full_store_answers_507_and_says_why(
    vault: Vault, small_store: Path, client: TestClient
) -> None:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    filler = fill(small_store)
    before = items(vault)

    response = client.post(
        f"/v1/cases/{case_id}/items", content=os.urandom(256 * 1024), headers=HEADERS
    )

    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:tvault:problem:storage-full"
    assert problem["cause"] == "store-full"
    assert "full" in problem["detail"]
    assert items(vault) == before and leftovers(small_store) == []
    [entry] = refusals(vault)
    assert entry.actor == "tina" and entry.case_id == case_id
    assert entry.details["cause"] == "store-full"
    assert entry.details["attempted"] == "item.deposit"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"] == "full"
    assert ready.json()["detail"] == "not ready: store (full)"

    filler.unlink()
    again = client.post(f"/v1/cases/{case_id}/items", content=b"room again", headers=HEADERS)
    assert again.status_code == 201, again.text
    assert client.get("/readyz").json()["checks"]["store"] == "ok"


def test_a_read_only_store_answers_503_with_retry_after(
    vault: Vault, small_store: Path, client: TestClient
) -> None:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    _run("mount", "-o", "remount,ro", str(small_store))

    response = client.post(f"/v1/cases/{case_id}/items", content=b"testimony", headers=HEADERS)

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "30"
    problem = response.json()
    assert problem["type"] == "urn:tvault:problem:storage-unavailable"
    assert problem["cause"] == "store-read-only"
    assert [e.details["cause"] for e in refusals(vault)] == ["store-read-only"]
    assert client.get("/readyz").json()["checks"]["store"] == "read-only"

    _run("mount", "-o", "remount,rw", str(small_store))
    again = client.post(f"/v1/cases/{case_id}/items", content=b"writable again", headers=HEADERS)
    assert again.status_code == 201, again.text


# The queue's statements run on both databases in tests/unit/vault/test_jobs.py; one is enough
# for this slower test.
@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
def test_workers_wait_uncharged_while_the_store_is_full_then_resume(
    vault: Vault, small_store: Path, memory_scratch: Path
) -> None:
    vault.settings = vault.settings.model_copy(
        update={
            "scratch_dir": memory_scratch,
            "jobs_backoff_seconds": 0.1,
            "jobs_poll_seconds": 0.05,
            "jobs_max_attempts": 2,
        }
    )
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    tina = principal(vault, "tina")
    deposited = []
    for n in range(6):
        data = f"{corpus.SPANISH} Documento {n}.".encode()
        fields = {"case": case_id, "kind": "document", "title": "T", "consent": "therapy"}
        job = Deposit.start(vault, tina, fields, len(data))
        job.write(data)
        deposited.append(job.commit().item_id)
    # The items are committed at the brim: their extracted texts find no room.
    filler = fill(small_store)
    worker = Worker(vault, stages=compose.stages())  # the extract and index stages
    worker.start()
    try:
        # Long enough for several rounds of claims at a 0.1 s backoff with 2 attempts a job:
        # charged, every job would have failed for good by now.
        time.sleep(1.5)
        with vault.sessions() as session:
            waiting = jobs.list_jobs(session, item_id=None)
        extract = [j for j in waiting if j.kind == jobs.EXTRACT]
        assert {j.state for j in extract} <= {jobs.QUEUED, jobs.RUNNING}, extract
        assert all(j.attempts <= 1 for j in extract)
        assert any(j.last_error and "store-full" in j.last_error for j in extract)
        with vault.sessions() as session:
            states = jobs.ingest_states(session, deposited)
        # `tvault status` and the API show why a queued item waits.
        assert any(
            s.state == jobs.IngestState.QUEUED and "store-full" in (s.reason or "")
            for s in states.values()
        ), states

        filler.unlink()
        deadline = time.monotonic() + 90
        while True:
            with vault.sessions() as session:
                states = jobs.ingest_states(session, deposited)
            if all(s.state == jobs.IngestState.INDEXED for s in states.values()):
                break
            assert not any(s.state == jobs.IngestState.FAILED for s in states.values()), states
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
    finally:
        worker.stop()
    with vault.sessions() as session:
        assert jobs.list_jobs(session, states=[jobs.FAILED]) == []


@pytest.fixture
def sqlite_vault_on_tmpfs(tmp_path: Path) -> Iterator[tuple[Vault, Path, Path]]:
    """A SQLite vault whose database and object store sit on two small tmpfs mounts."""
    home = tmp_path / "vault"
    database = tmp_path / "db"
    home.mkdir()
    database.mkdir()
    with tmpfs_at(database) as db_dir:
        url = f"sqlite+pysqlite:///{db_dir / 'vault.db'}"
        settings = load_settings(home, database_url=url)
        made = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
        with made.sessions.begin() as session:
            add_user(session, "tina", "therapist", made.clock())
        try:
            with tmpfs_at(settings.objects_path) as store:
                yield made, db_dir, store
        finally:
            made.close()


def test_a_full_database_refuses_the_deposit_and_leaves_nothing(
    sqlite_vault_on_tmpfs: tuple[Vault, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    vault, db_dir, store = sqlite_vault_on_tmpfs
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    token = token_for(vault, "tina", "therapist")
    client = TestClient(
        app_of(vault),
        base_url="http://vault.test",
        headers={"Authorization": f"Bearer {token}"},
    )
    objects_before = sorted(vault.store.names())
    # An empty write-ahead log: every new transaction must grow a file on the full disk.
    with vault.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    db_filler = fill(db_dir)
    store_filler = fill(store)
    caplog.set_level(logging.ERROR, logger="vault.storage_faults")

    # Both full (one disk, as on a laptop): the store fails first; the ledger cannot take
    # the refusal, which is still answered, and logged as unrecorded.
    response = client.post(f"/v1/cases/{case_id}/items", content=b"x" * 65536, headers=HEADERS)
    assert response.status_code == 507, response.text
    assert response.json()["cause"] == "store-full"
    assert "could not be recorded in the ledger" in caplog.text

    # The store has room, the database none: the object is written, the commit fails, and the
    # object goes again.
    store_filler.unlink()
    response = client.post(f"/v1/cases/{case_id}/items", content=b"y" * 65536, headers=HEADERS)
    assert response.status_code == 507, response.text
    assert response.json()["cause"] == "database-full"
    assert sorted(vault.store.names()) == objects_before
    assert leftovers(store) == []

    db_filler.unlink()
    response = client.post(f"/v1/cases/{case_id}/items", content=b"z" * 65536, headers=HEADERS)
    assert response.status_code == 201, response.text
    assert items(vault) == 1
    # Only the refusal written while the database had room again? None: both came while full.
    assert refusals(vault) == []
