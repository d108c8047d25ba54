"""Plaintext never touches a disk: every file the worker writes while extracting is in memory.

A probe (`sys.addaudithook`, the interpreter's own `open` audit event) records every file the
worker process opens for writing while it extracts; each must be on a tmpfs or ramfs, as
/proc/self/mountinfo (not the vault's own check) says. A document over the in-memory limit
fails with the reason and writes nothing; a scratch directory on a disk is refused at start.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import ScratchError
from tests import corpus
from tests.unit.vault.conftest import _clean_env, principal
from vault import compose, jobs
from vault.cases import create_case
from vault.db.jobs_tables import ItemText, Job
from vault.deposit import Deposit
from vault.parts import Vault
from vault.worker import Worker

# The unit tests' settings guard, used here by importing it (this file starts processes).
__all__ = ["_clean_env"]

_WRITES: list[str] = []
_PROBING = threading.Event()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _probe(event: str, args: tuple[object, ...]) -> None:
    # Audit hooks cannot be removed: this one records only while a test sets the flag.
    if event != "open" or not _PROBING.is_set():
        return
    path, mode, flags = args
    writes = isinstance(mode, str) and any(c in mode for c in "wax+")
    writes = writes or (isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
    if writes and isinstance(path, str | bytes | os.PathLike):
        name = os.fsdecode(path)
        # A device (/dev/null for a child's stdio) stores nothing.
        if not (os.path.exists(name) and stat.S_ISCHR(os.stat(name).st_mode)):
            _WRITES.append(name)


sys.addaudithook(_probe)


@pytest.fixture
def probe() -> Iterator[list[str]]:
    _WRITES.clear()
    _PROBING.set()
    try:
        yield _WRITES
    finally:
        _PROBING.clear()


def fs_type(path: str) -> str:
    """The file-system type of the mount holding `path` (longest mount point that prefixes it)."""
    real = os.path.realpath(os.path.dirname(path) if not os.path.isdir(path) else path)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            before, after = line.split(" - ", 1)
            point = before.split()[4]
            if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(
                best
            ):
                best, kind = point, after.split()[0]
    return kind


@pytest.fixture
def vault(vault: Vault, memory_scratch: Path) -> Vault:
    vault.settings = vault.settings.model_copy(
        update={"scratch_dir": memory_scratch, "jobs_backoff_seconds": 0.0}
    )
    return vault


def deposit(vault: Vault, data: bytes) -> str:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    fields = {"case": case_id, "kind": "testimony", "title": "T", "consent": "therapy"}
    job = Deposit.start(vault, principal(vault, "tina"), fields, len(data))
    job.write(data)
    return job.commit().item_id


def run_worker(vault: Vault) -> None:
    worker = Worker(vault, stages={jobs.EXTRACT: compose.extract_stage})
    try:
        worker.run_until_idle()
    finally:
        worker.stop()


def test_every_write_of_an_extraction_is_in_memory(
    vault: Vault, tmp_path: Path, probe: list[str]
) -> None:
    marker = "memoryonlymarker"
    data = corpus.pdf(tmp_path, pages=[f"{corpus.SPANISH} {marker}"]).read_bytes()
    item = deposit(vault, data)
    probe.clear()  # the deposit's own writes (database, sealed object) are not the point here
    run_worker(vault)
    writes = list(probe)
    with vault.sessions() as session:
        assert session.get(ItemText, item) is not None
    # The plaintext copy was written, and it and every other write sat on a memory file system,
    # apart from the vault's own sealed files (objects, database) which hold no plaintext.
    home = str(vault.settings.home.resolve())
    copies = [w for w in writes if not os.path.realpath(w).startswith(home)]
    assert any(w.startswith(str(vault.settings.scratch_dir)) for w in copies), writes
    assert {fs_type(w) for w in copies} <= {"tmpfs", "ramfs"}, copies
    for path in vault.settings.home.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path


def test_a_document_over_the_memory_limit_fails_with_its_reason_and_writes_nothing(
    vault: Vault, probe: list[str]
) -> None:
    vault.settings = vault.settings.model_copy(update={"extract_memory_limit": 1000})
    item = deposit(vault, b"A testimony longer than the limit. " * 100)
    probe.clear()
    run_worker(vault)
    with vault.sessions() as session:
        job = session.query(Job).filter_by(item_id=item, kind=jobs.EXTRACT).one()
        assert job.state == jobs.FAILED
        assert job.last_error is not None and "TVAULT_EXTRACT_MEMORY_LIMIT" in job.last_error
        assert session.get(ItemText, item) is None
    home = str(vault.settings.home.resolve())
    assert [w for w in probe if not os.path.realpath(w).startswith(home)] == []


def test_a_scratch_directory_on_a_disk_is_refused_at_start(vault: Vault, tmp_path: Path) -> None:
    assert fs_type(str(tmp_path)) not in {"tmpfs", "ramfs"}  # the premise of this test
    vault.settings = vault.settings.model_copy(update={"scratch_dir": tmp_path})
    with pytest.raises(ScratchError, match="not in memory"):
        compose.extract_stage(vault, 1)
