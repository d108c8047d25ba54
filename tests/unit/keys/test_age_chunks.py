"""An age file written over several sessions (`start_stream`, `ChunkSealer`): the same bytes as
`Sealer` for the same plaintext and randomness, and a normal age file for `open_stream`."""

from __future__ import annotations

import io
import itertools

import pytest

import keys
from keys import age as age_module

CHUNK = keys.CHUNK_SIZE
SIZES = [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7]


def _pattern(n: int) -> bytes:
    return bytes((i * 13 + 5) % 251 for i in range(n))


def _fixed_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `random_bytes` repeat the same sequence each time it is set up."""
    counter = itertools.count()
    monkeypatch.setattr(
        age_module, "random_bytes", lambda n: bytes([next(counter) % 256]) * n, raising=True
    )


def _pieces(data: bytes, ends: list[int]) -> list[bytes]:
    bounds = [0, *ends, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _chunked(data: bytes, recipient: str, cuts: list[int]) -> bytes:
    """Seal `data` as a resumable upload does: whole chunks per session, the rest carried."""
    start, key = keys.start_stream([recipient])
    out = bytearray(start)
    carried = b""
    written = 0
    for piece in _pieces(data, cuts):
        held = carried + piece
        if written + len(held) == len(data):
            out += keys.ChunkSealer(key, written // CHUNK).seal(held, last=True)
            written += len(held)
            carried = b""
            continue
        whole = len(held) - len(held) % CHUNK
        out += keys.ChunkSealer(key, written // CHUNK).seal(held[:whole])
        written += whole
        carried = held[whole:]
    assert written == len(data)
    return bytes(out)


@pytest.mark.parametrize("size", SIZES)
def test_chunks_equal_what_the_sealer_writes(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    identity, recipient = keys.generate_identity()
    data = _pattern(size)
    _fixed_randomness(monkeypatch)
    whole = io.BytesIO()
    with keys.Sealer(whole, [recipient]) as sealer:
        sealer.write(data)
    _fixed_randomness(monkeypatch)
    cuts = sorted({c for c in (1, CHUNK - 3, CHUNK, CHUNK + 9, 2 * CHUNK) if 0 < c < size})
    chunked = _chunked(data, recipient, cuts)
    assert chunked == whole.getvalue()
    assert b"".join(keys.open_stream(io.BytesIO(chunked), identity)) == data


@pytest.mark.parametrize("size", SIZES)
def test_each_session_may_end_anywhere(size: int) -> None:
    identity, recipient = keys.generate_identity()
    data = _pattern(size)
    for cuts in ([], [size // 2] if size > 1 else [], list(range(1000, size, 50_000))):
        sealed = _chunked(data, recipient, cuts)
        assert b"".join(keys.open_stream(io.BytesIO(sealed), identity)) == data
        start = len(sealed) - keys.payload_size(size)
        assert sealed[start - 16 : start] != b""  # the nonce sits before the payload
        assert keys.payload_size(size) == len(sealed) - start


def test_open_chunks_reads_back_whole_chunks_and_catches_damage() -> None:
    _identity, recipient = keys.generate_identity()
    start, key = keys.start_stream([recipient])
    data = _pattern(3 * CHUNK)
    sealed = keys.ChunkSealer(key).seal(data)
    assert b"".join(keys.open_chunks(key, sealed)) == data
    tail = keys.ChunkSealer(key, 2).seal(data[2 * CHUNK :])
    assert b"".join(keys.open_chunks(key, tail, 2)) == data[2 * CHUNK :]
    with pytest.raises(keys.UnsealError):
        list(keys.open_chunks(key, tail, 1))  # numbered wrongly
    damaged = bytearray(sealed)
    damaged[CHUNK + 20] ^= 1
    with pytest.raises(keys.UnsealError):
        list(keys.open_chunks(key, damaged))
    with pytest.raises(keys.UnsealError):
        list(keys.open_chunks(key, sealed[:-1]))  # not whole chunks
    assert start.startswith(b"age-encryption.org/v1\n")


def test_refusals() -> None:
    _identity, recipient = keys.generate_identity()
    _start, key = keys.start_stream([recipient])
    with pytest.raises(ValueError, match="last piece"):
        keys.ChunkSealer(key).seal(b"x" * (CHUNK + 1))
    sealer = keys.ChunkSealer(key)
    sealer.seal(b"x" * CHUNK)
    with pytest.raises(ValueError, match="empty last chunk"):
        sealer.seal(b"", last=True)
    sealer.seal(b"y", last=True)
    with pytest.raises(ValueError, match="sealed already"):
        sealer.seal(b"z", last=True)
    with pytest.raises(ValueError):
        keys.ChunkSealer(b"short")
    with pytest.raises(ValueError):
        keys.start_stream([])
    with pytest.raises(TypeError):
        keys.start_stream(recipient)


def test_a_file_truncated_before_its_last_chunk_does_not_open() -> None:
    identity, recipient = keys.generate_identity()
    start, key = keys.start_stream([recipient])
    # Whole chunks without the last one: what an unfinished upload holds.
    unfinished = start + keys.ChunkSealer(key).seal(_pattern(2 * CHUNK))
    with pytest.raises(keys.UnsealError):
        b"".join(keys.open_stream(io.BytesIO(bytes(unfinished)), identity))


def test_seal_into_writes_what_seal_returns_and_refuses_a_short_buffer() -> None:
    _identity, recipient = keys.generate_identity()
    _start, key = keys.start_stream([recipient])
    data = _pattern(2 * CHUNK + 5)
    expected = keys.ChunkSealer(key).seal(data, last=True)
    sealer = keys.ChunkSealer(key)
    assert sealer.sealed_size(len(data), last=True) == len(expected)
    out = memoryview(bytearray(len(expected) + 10))
    with pytest.raises(ValueError, match="do not fit"):
        sealer.seal_into(data, out[: len(expected) - 1], last=True)
    assert sealer.counter == 0  # nothing sealed by the refusal
    assert sealer.seal_into(data, out, last=True) == len(expected)
    assert bytes(out[: len(expected)]) == bytes(expected)
