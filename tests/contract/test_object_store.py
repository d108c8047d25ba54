"""Contract of the `ObjectStore` port, run against every adapter (see `tests/contract/conftest.py`).

Adapters: the local directory (always), S3 on a moto server started on loopback with TLS (marked
`s3`), and any real S3 endpoint named by `TVAULT_TEST_S3_ENDPOINT` (marked `s3`).
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.contract.conftest import StoreTarget
from vault.storage import (
    InvalidObjectName,
    ObjectExists,
    ObjectLocked,
    ObjectNotFound,
    StorageError,
)

MIB = 1024 * 1024


class Boom(Exception):
    """Raised inside a writer by the tests."""


def _chunks(total: int, chunk: int = 64 * 1024, seed: bytes = b"tv") -> list[bytes]:
    # Deterministic, incompressible-looking bytes, emitted like keys.Sealer does (64 KiB).
    out: list[bytes] = []
    counter = 0
    while total > 0:
        block = b"".join(
            hashlib.sha256(seed + (counter * 1000 + i).to_bytes(8, "big")).digest()
            for i in range(chunk // 32)
        )[: min(chunk, total)]
        out.append(block)
        total -= len(block)
        counter += 1
    return out


def _read_all(target: StoreTarget, name: str) -> bytes:
    with target.store.open(name) as src:
        parts = []
        while block := src.read(1024 * 1024):
            parts.append(block)
    return b"".join(parts)


@pytest.mark.parametrize("size", [0, 1, 6 * MIB + 123], ids=["empty", "one-byte", "6MiB"])
def test_round_trip(target: StoreTarget, size: int) -> None:
    name = target.name("obj")
    chunks = _chunks(size)
    data = b"".join(chunks)
    with target.store.writer(name) as out:
        for chunk in chunks:
            assert out.write(chunk) == len(chunk)
        out.commit()
    assert target.store.exists(name)
    assert target.store.size(name) == size
    assert _read_all(target, name) == data
    assert name in set(target.store.names(target.prefix))
    assert target.traces() == []


def test_abandon_without_commit_leaves_nothing(target: StoreTarget) -> None:
    name = target.name("abandoned")
    with target.store.writer(name) as out:
        for chunk in _chunks(target.multipart_size):
            out.write(chunk)
    assert not target.store.exists(name)
    assert list(target.store.names(target.prefix)) == []
    assert target.traces() == []


@pytest.mark.parametrize("size", [10, -1], ids=["small", "multipart"])
def test_exception_inside_writer_leaves_nothing(target: StoreTarget, size: int) -> None:
    name = target.name("failed")
    size = target.multipart_size if size < 0 else size
    with pytest.raises(Boom), target.store.writer(name) as out:
        for chunk in _chunks(size):
            out.write(chunk)
        raise Boom
    assert not target.store.exists(name)
    assert target.traces() == []


def test_write_after_exit_is_refused(target: StoreTarget) -> None:
    name = target.name("closed")
    with target.store.writer(name) as out:
        out.write(b"x")
        out.commit()
    with pytest.raises(StorageError):
        out.write(b"y")
    with pytest.raises(StorageError):
        out.commit()
    assert _read_all(target, name) == b"x"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../escape",
        "a/../../escape",
        "/absolute",
        "a//b",
        "a/",
        ".hidden",
        "a/.tmp",
        "./a",
        "a\\b",
        "a\x00b",
        "a b",
        "ümlaut",
        "a+b",
        "x" * 256,
    ],
)
def test_names_cannot_escape(target: StoreTarget, bad: str) -> None:
    with pytest.raises(InvalidObjectName):
        target.store.writer(bad)
    for call in (target.store.open, target.store.exists, target.store.size, target.store.delete):
        with pytest.raises(InvalidObjectName):
            call(bad)
    with pytest.raises(InvalidObjectName):
        target.store.put_locked(bad, b"x")
    with pytest.raises(InvalidObjectName):
        target.store.lock(bad)
    assert target.traces() == []


@pytest.mark.parametrize("bad", ["..", "../", "a/../", "/", "a//", "ü"])
def test_prefixes_cannot_escape(target: StoreTarget, bad: str) -> None:
    with pytest.raises(InvalidObjectName):
        list(target.store.names(bad))


def test_not_found(target: StoreTarget) -> None:
    name = target.name("missing")
    assert not target.store.exists(name)
    with pytest.raises(ObjectNotFound):
        target.store.open(name)
    with pytest.raises(ObjectNotFound):
        target.store.size(name)
    with pytest.raises(ObjectNotFound):
        target.store.delete(name)
    with pytest.raises(ObjectNotFound):
        target.store.lock(name)


def test_no_overwrite(target: StoreTarget) -> None:
    name = target.name("once")
    with target.store.writer(name) as out:
        out.write(b"first")
        out.commit()
    with pytest.raises(ObjectExists):
        target.store.writer(name)
    with pytest.raises(ObjectExists):
        target.store.put_locked(name, b"second")
    assert _read_all(target, name) == b"first"
    assert target.traces() == []


def test_racing_writers_never_overwrite(target: StoreTarget) -> None:
    name = target.name("race")
    first = target.store.writer(name)
    second = target.store.writer(name)  # both pass the early check
    with first:
        first.write(b"first")
        first.commit()
    with pytest.raises(ObjectExists), second:
        second.write(b"second")
        second.commit()
    assert _read_all(target, name) == b"first"
    assert target.traces() == []


def test_delete_unlocked(target: StoreTarget) -> None:
    name = target.name("gone")
    with target.store.writer(name) as out:
        out.write(b"bye")
        out.commit()
    target.store.delete(name)
    assert not target.store.exists(name)
    assert list(target.store.names(target.prefix)) == []
    assert target.traces() == []


def test_lock_then_delete_refused(target: StoreTarget) -> None:
    # moto honours a delete of a version under retention being refused, which is all this
    # checks there; what moto does NOT enforce like real servers (COMPLIANCE retention can be
    # shortened; governance bypass rules) is out of reach of this suite.
    if not target.locks:
        pytest.skip("this S3 bucket has no object lock (TVAULT_TEST_S3_OBJECT_LOCK=false)")
    name = target.name("locked")
    with target.store.writer(name) as out:
        out.write(b"evidence")
        out.commit()
    target.store.lock(name)
    target.store.lock(name)  # idempotent
    with pytest.raises(ObjectLocked):
        target.store.delete(name)
    assert _read_all(target, name) == b"evidence"
    assert target.store.exists(name)


def test_put_locked(target: StoreTarget) -> None:
    name = target.name("checkpoint")
    target.store.put_locked(name, b"signed note\n")
    assert _read_all(target, name) == b"signed note\n"
    if target.locks:
        with pytest.raises(ObjectLocked):
            target.store.delete(name)
    with pytest.raises(ObjectExists):
        target.store.put_locked(name, b"another note\n")
    assert _read_all(target, name) == b"signed note\n"


def test_names_and_modification_times(target: StoreTarget) -> None:
    before = datetime.now(UTC) - timedelta(seconds=target.clock_skew)
    names = {target.name(f"dir/item-{i}") for i in range(3)} | {target.name("other")}
    for name in names:
        with target.store.writer(name) as out:
            out.write(name.encode())
            out.commit()
    after = datetime.now(UTC) + timedelta(seconds=target.clock_skew)
    assert set(target.store.names(target.prefix)) == names
    dir_prefix = target.name("dir/")
    assert set(target.store.names(dir_prefix)) == {n for n in names if n.startswith(dir_prefix)}
    assert set(target.store.names(target.name("dir/item-1"))) == {target.name("dir/item-1")}
    entries = {e.name: e for e in target.store.entries(target.prefix)}
    assert set(entries) == names
    for name, entry in entries.items():
        assert entry.size == len(name.encode())
        assert entry.modified.tzinfo is not None
        assert before <= entry.modified <= after, (entry.modified, before, after)


def test_modification_time_orders_old_before_new(target: StoreTarget) -> None:
    old, new = target.name("old"), target.name("new")
    target.store.put_locked(old, b"1")
    time.sleep(1.1)  # S3 times have one-second resolution; this is ordering, not a timing check
    target.store.put_locked(new, b"2")
    entries = {e.name: e.modified for e in target.store.entries(target.prefix)}
    assert entries[old] < entries[new]


def test_open_reads_in_chunks(target: StoreTarget) -> None:
    name = target.name("chunks")
    data = os.urandom(300_000)
    target.store.put_locked(name, data)
    with target.store.open(name) as src:
        assert src.read(10) == data[:10]
        assert src.read(100_000) == data[10:100_010]
        assert src.read() == data[100_010:]
        assert src.read(1) == b""


def test_adopt_a_finished_file(target: StoreTarget, tmp_path: Path) -> None:
    name = target.name("adopted")
    data = b"".join(_chunks(target.multipart_size + 77))
    source = tmp_path / "object.part"
    source.write_bytes(data)
    target.store.adopt(name, source)
    assert not source.exists()
    assert target.store.size(name) == len(data)
    assert _read_all(target, name) == data
    assert target.traces() == []
    target.store.delete(name)  # unlocked, like an object a writer committed


def test_adopt_never_overwrites(target: StoreTarget, tmp_path: Path) -> None:
    name = target.name("taken")
    target.store.put_locked(name, b"first")
    source = tmp_path / "object.part"
    source.write_bytes(b"second")
    with pytest.raises(ObjectExists):
        target.store.adopt(name, source)
    assert _read_all(target, name) == b"first"
    assert source.read_bytes() == b"second"  # the caller's to remove
    assert target.traces() == []
