"""Deposits large enough for the second thread: the same digests, object and cleanup."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.deposit_support import counts, fields, objects
from vault import item_keys
from vault.cases import create_case
from vault.db import ItemKey
from vault.db.signature_tables import ItemCiphertext
from vault.deposit import PARALLEL, SPOOL, Deposit
from vault.parts import Vault
from vault.storage import StorageError

# Several spool batches past the threshold, and a size that is no multiple of a chunk.
SIZE = PARALLEL + 5 * SPOOL + 12_345


@pytest.fixture
def case_id(vault: Vault) -> str:
    return create_case(vault, principal(vault, "tina"), "Case of the river").id


def write_in_pieces(job: Deposit, data: bytes) -> None:
    # Odd sizes and every buffer type a caller may pass; the reused buffer is overwritten
    # right after `write`, as a caller's would be.
    step, reused = 300_001, bytearray(300_001)
    for n, start in enumerate(range(0, len(data), step)):
        piece = data[start : start + step]
        if n % 3 == 1:
            reused[: len(piece)] = piece
            job.write(memoryview(reused)[: len(piece)])  # type: ignore[arg-type]
            reused[:] = bytes(len(reused))
        elif n % 3 == 2:
            job.write(bytearray(piece))  # type: ignore[arg-type]
        else:
            job.write(piece)


def test_a_large_deposit_seals_and_digests_every_byte_in_order(vault: Vault, case_id: str) -> None:
    body = os.urandom(SIZE)
    job = Deposit.start(vault, principal(vault, "tina"), fields(case_id), SIZE)
    write_in_pieces(job, body)
    result = job.commit()
    assert (result.size, result.sha256) == (SIZE, hashlib.sha256(body).hexdigest())
    (name,) = objects(vault)
    with vault.store.open(name) as source:
        sealed = source.read()
    with vault.sessions() as session:
        key = session.get(ItemKey, result.item_id)
        recorded = session.get(ItemCiphertext, result.item_id)
        assert key is not None and recorded is not None
        identity = item_keys.open_identity(vault.keyring, result.item_id, key.wrapped)
        # `tvault verify --fast` compares against these: they must describe the stored object.
        assert (recorded.sha256, recorded.size) == (
            hashlib.sha256(sealed).hexdigest(),
            len(sealed),
        )
    out = io.BytesIO()
    keys.unseal(io.BytesIO(sealed), out, identity)
    assert out.getvalue() == body


def test_an_aborted_large_deposit_leaves_nothing(vault: Vault, case_id: str) -> None:
    before = counts(vault)
    job = Deposit.start(vault, principal(vault, "tina"), fields(case_id))
    for _ in range(4):
        job.write(os.urandom(SPOOL))
    job.abort()
    assert objects(vault) == [] and counts(vault) == before


class _FailingWriter:
    """An object writer that fails once `limit` bytes were written (a full disk)."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner, self._left = inner, limit

    def write(self, data: bytes) -> int:
        self._left -= len(data)
        if self._left < 0:
            raise StorageError("no space left on device")
        written: int = self._inner.write(data)
        return written

    def commit(self) -> None:
        self._inner.commit()


def test_a_store_failure_on_the_second_thread_fails_the_deposit_and_leaves_nothing(
    vault: Vault, case_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = vault.store.writer

    @contextmanager
    def failing(name: str) -> Iterator[_FailingWriter]:
        with opened(name) as inner:
            yield _FailingWriter(inner, 2 * SPOOL)

    monkeypatch.setattr(vault.store, "writer", failing)
    before = counts(vault)
    job = Deposit.start(vault, principal(vault, "tina"), fields(case_id))
    with pytest.raises(StorageError, match="no space"):
        for _ in range(8):
            job.write(os.urandom(SPOOL))
        job.commit()
    job.abort()
    assert objects(vault) == [] and counts(vault) == before


@pytest.mark.parametrize("threads", [False, True], ids=["inline", "threads"])
def test_the_spool_hands_over_page_aligned_batches_of_exactly_spool_bytes(threads: bool) -> None:
    # The local store writes such batches past the page cache without a copy.
    from contextlib import ExitStack

    from vault.deposit import _Spool
    from vault.storage.buffers import is_page_aligned

    batches: list[tuple[bool, bytes]] = []
    spool = _Spool(lambda b: batches.append((is_page_aligned(b), bytes(b))), hashlib.sha256())
    identity, recipient = keys.generate_identity()
    data = os.urandom(3 * SPOOL + 12_345)
    with ExitStack() as stack:
        if threads:
            spool.start(stack)
        sealer = keys.Sealer(spool, [recipient], reserve=spool.reserve)  # type: ignore[arg-type]
        sealer.write(data[:7])  # a partial chunk first: the sealer's own copy path
        sealer.write(data[7:])
        sealer.close()
        spool.drain()
    sizes = [len(b) for _, b in batches]
    assert sizes[:-1] == [SPOOL] * (len(sizes) - 1) and 0 < sizes[-1] <= SPOOL
    assert all(aligned for aligned, _ in batches)
    sealed = b"".join(b for _, b in batches)
    assert spool.digest.hexdigest() == hashlib.sha256(sealed).hexdigest()
    assert spool.size == len(sealed)
    out = io.BytesIO()
    assert keys.unseal(io.BytesIO(sealed), out, identity) == len(data)
    assert out.getvalue() == data
