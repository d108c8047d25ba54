"""What the local directory adapter promises beyond the port contract: layout and crash safety."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault.storage import LocalObjectStore, ObjectLocked, StorageError

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from vault.storage import LocalObjectStore
    store = LocalObjectStore(Path(sys.argv[1]))
    out = store.writer("items/crashed").__enter__()
    out.write(b"half of a testimony")
    print("writing", flush=True)
    time.sleep(60)
    """
)


def _temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".tmp").iterdir() if p.name != ".lock")


@contextlib.contextmanager
def _writer_process(root: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that has written half an object into `root` and hangs; killed on exit."""
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "writing\n"
            yield proc
        finally:
            proc.kill()
            proc.wait()


def test_killed_writer_leaves_only_a_temp_file_that_the_next_open_removes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with _writer_process(root) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(_temp_files(root)) == 1
    store = LocalObjectStore(root)
    assert _temp_files(root) == []
    assert not store.exists("items/crashed")
    assert list(store.names()) == []


def test_open_leaves_a_live_writer_of_another_process_alone(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with _writer_process(root):
        LocalObjectStore(root)
        assert len(_temp_files(root)) == 1
    LocalObjectStore(root)
    assert _temp_files(root) == []


def test_layout_fans_out_and_keeps_files_private(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalObjectStore(root)
    store.put_locked("items/abc", b"sealed")
    path = store._path("items/abc")
    rel = path.relative_to(root).parts
    assert len(rel) == 3 and rel[2] == "items+abc"
    assert all(len(part) == 2 for part in rel[:2])
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o400  # locked
    with store.writer("items/def") as out:
        out.write(b"x")
        out.commit()
    assert stat.S_IMODE(store._path("items/def").stat().st_mode) == 0o600


def test_lock_survives_reopen(tmp_path: Path) -> None:
    root = tmp_path / "store"
    LocalObjectStore(root).put_locked("checkpoints/1", b"note")
    with pytest.raises(ObjectLocked):
        LocalObjectStore(root).delete("checkpoints/1")


def test_foreign_files_are_not_listed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalObjectStore(root)
    store.put_locked("a", b"1")
    (root / "zz").mkdir()
    (root / "zz" / "yy").mkdir()
    (root / "zz" / "yy" / "b").write_bytes(b"wrong fan-out")
    (root / "README").write_bytes(b"not an object")
    assert list(store.names()) == ["a"]


def test_unwritable_root_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError):
        LocalObjectStore(blocker / "store")


def test_modification_time_is_commit_time(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    before = time.time()
    store.put_locked("t", b"1")
    (entry,) = store.entries()
    assert entry.modified.timestamp() >= before - 1
    assert os.stat(store._path("t")).st_size == entry.size == 1
