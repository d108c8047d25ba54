"""What the local directory adapter promises beyond the port contract: layout and crash safety
(a writer killed in another process: tests/integration/test_storage_local.py)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vault.storage import LocalObjectStore, ObjectLocked, StorageError
from vault.storage.adapters import local


def _temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".tmp").iterdir() if p.name != ".lock")


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


def _pieces(total: int) -> list[bytes]:
    """`total` bytes in pieces of irregular sizes, so block and window edges fall mid-piece."""
    sizes = [1, 65_552, 1024 * 1024 + 7, 3, 300_001, 2 * 1024 * 1024]
    pieces, made, i = [], 0, 0
    while made < total:
        size = min(sizes[i % len(sizes)], total - made)
        pieces.append(os.urandom(size))
        made += size
        i += 1
    return pieces


def _store_pieces(store: LocalObjectStore, name: str, pieces: list[bytes]) -> bytes:
    with store.writer(name) as out:
        for piece in pieces:
            assert out.write(piece) == len(piece)
        out.commit()
    with store.open(name) as src:
        return src.read()


# Past two writeback windows (8 MiB each) and many 1 MiB blocks, ending in a partial block.
_LARGE = 3 * 8 * 1024 * 1024 + 12_345
_BLOCK = 1024 * 1024

_Write = Callable[[int, "bytes | memoryview"], int]


def _on_direct_writes(monkeypatch: pytest.MonkeyPatch, direct: Callable[..., int]) -> None:
    """Route `os.write` calls made with O_DIRECT set to `direct(fd, data, real_write)`."""
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & local._O_DIRECT:
            return direct(fd, data, real_write)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_large_object_round_trips_through_the_direct_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct: list[int] = []

    def count(fd: int, data: bytes | memoryview, real_write: _Write) -> int:
        direct.append(real_write(fd, data))
        return direct[-1]

    _on_direct_writes(monkeypatch, count)
    store = LocalObjectStore(tmp_path / "objects")
    pieces = _pieces(_LARGE)
    assert _store_pieces(store, "items/large", pieces) == b"".join(pieces)
    # Every full block went past the page cache (the file system under tmp_path allows it).
    assert direct == [_BLOCK] * (_LARGE // _BLOCK)


def test_large_object_round_trips_through_the_page_cache_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No O_DIRECT at all: every block goes through the page cache and the writeback window.
    monkeypatch.setattr(local, "_O_DIRECT", 0)
    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    store = LocalObjectStore(tmp_path / "objects")
    pieces = _pieces(_LARGE)
    assert _store_pieces(store, "items/large", pieces) == b"".join(pieces)
    # Each full window was handed to writeback, each earlier one dropped: the ranges cover the
    # file from its start, one window at a time.
    assert len(advised) == 3
    assert advised[0][0] == 0
    assert all(length > 0 for _, length in advised)


def test_a_refused_direct_write_falls_back_to_the_page_cache_with_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a file system without O_DIRECT: the first direct write fails with EINVAL.
    refused: list[int] = []

    def refuse(fd: int, data: bytes | memoryview, real_write: _Write) -> int:
        refused.append(len(data))
        raise OSError(errno.EINVAL, "Invalid argument")

    _on_direct_writes(monkeypatch, refuse)
    store = LocalObjectStore(tmp_path / "objects")
    pieces = _pieces(5 * _BLOCK + 99)
    assert _store_pieces(store, "items/fallback", pieces) == b"".join(pieces)
    assert refused == [_BLOCK]  # tried once, then the page cache for good


def test_a_short_direct_write_is_completed_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short: list[int] = []

    def cut(fd: int, data: bytes | memoryview, real_write: _Write) -> int:
        if short:
            return real_write(fd, data)
        short.append(len(data))
        return real_write(fd, memoryview(data)[:4096])

    _on_direct_writes(monkeypatch, cut)
    store = LocalObjectStore(tmp_path / "objects")
    pieces = _pieces(3 * _BLOCK + 5)
    assert _store_pieces(store, "items/short", pieces) == b"".join(pieces)
    assert short == [_BLOCK]


def test_a_failing_write_is_a_storage_error_and_leaves_no_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = LocalObjectStore(tmp_path / "objects")
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(StorageError, match="No space left"), store.writer("items/full") as out:
        out.write(os.urandom(3 * _BLOCK))
    monkeypatch.undo()
    assert not store.exists("items/full")
    assert _temp_files(tmp_path / "objects") == []


def test_whole_aligned_blocks_are_written_from_the_callers_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.storage.buffers import address, aligned_buffer

    sources: list[int | None] = []

    def record(fd: int, data: bytes | memoryview, real_write: _Write) -> int:
        sources.append(address(memoryview(data)))
        return real_write(fd, data)

    _on_direct_writes(monkeypatch, record)
    store = LocalObjectStore(tmp_path / "objects")
    spool = aligned_buffer(2 * _BLOCK)
    spool[:] = os.urandom(2 * _BLOCK)
    tail = os.urandom(1000)
    with store.writer("items/aligned") as out:
        out.write(spool)  # two whole blocks from an aligned buffer: no copy
        out.write(tail)
        out.commit()
    assert sources == [address(spool)]
    with store.open("items/aligned") as src:
        assert src.read() == bytes(spool) + tail


def test_adopt_links_the_file_into_place_private_and_fresh(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    source = tmp_path / "object.part"
    source.write_bytes(b"sealed bytes")
    os.chmod(source, 0o640)
    os.utime(source, (1_000_000, 1_000_000))  # written long ago, finished now
    inode = source.stat().st_ino
    store.adopt("items/adopted", source)
    path = store._path("items/adopted")
    assert path.stat().st_ino == inode  # linked: no second copy of the bytes
    assert path.stat().st_nlink == 1 and not source.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_mtime > time.time() - 60  # the sweep's grace starts now
    assert _temp_files(tmp_path / "store") == []


def test_adopt_across_file_systems_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalObjectStore(tmp_path / "store")
    source = tmp_path / "object.part"
    source.write_bytes(b"z" * (3 * 1024 * 1024 + 5))
    inode = source.stat().st_ino

    link = os.link

    def cross_device(src: str | Path, dst: str | Path) -> None:
        if Path(src) == source:  # the upload's file is on another file system
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        link(src, dst)  # the writer's temp file is not

    monkeypatch.setattr(local.os, "link", cross_device)
    store.adopt("items/copied", source)
    path = store._path("items/copied")
    assert path.read_bytes() == b"z" * (3 * 1024 * 1024 + 5)
    assert path.stat().st_ino != inode and not source.exists()
    assert _temp_files(tmp_path / "store") == []
