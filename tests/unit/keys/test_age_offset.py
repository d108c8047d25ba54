"""`open_stream(src, identity, offset)`: the plaintext from `offset` on (an HTTP range of an
item), reached by seeking past whole chunks, or reading past them when `src` cannot seek; what
it yields is authenticated as without an offset: a chunk altered, moved or cut is refused."""

from __future__ import annotations

import io
import os

import pytest

import keys

CHUNK = keys.CHUNK_SIZE
ENC = CHUNK + 16  # a sealed chunk: its plaintext and its Poly1305 tag
PLAIN = os.urandom(3 * CHUNK + 1000)


class _Pipe(io.RawIOBase):
    """A source that cannot seek (an object store's response stream); counts bytes read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        got = self._data.readinto(buffer)
        self.read_bytes += got
        return got


@pytest.fixture(scope="module")
def sealed() -> tuple[str, bytes]:
    identity, recipient = keys.generate_identity()
    out = io.BytesIO()
    keys.seal(io.BytesIO(PLAIN), out, [recipient])
    return identity, out.getvalue()


def _open(data: bytes, identity: str, offset: int, seekable: bool = True) -> bytes:
    source: io.IOBase = io.BytesIO(data) if seekable else _Pipe(data)
    return b"".join(keys.open_stream(source, identity, offset))  # type: ignore[arg-type]


@pytest.mark.parametrize("seekable", [True, False], ids=["seek", "read past"])
@pytest.mark.parametrize(
    "offset", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5, 3 * CHUNK, len(PLAIN) - 1]
)
def test_the_plaintext_from_any_offset(
    sealed: tuple[str, bytes], offset: int, seekable: bool
) -> None:
    identity, data = sealed
    assert _open(data, identity, offset, seekable) == PLAIN[offset:]


def test_seeking_reads_no_chunk_before_the_offset(sealed: tuple[str, bytes]) -> None:
    identity, data = sealed
    header = len(data) - 3 * ENC - 1016  # 3 full chunks, then the last one of 1000 bytes
    seeking = io.BytesIO(data)
    chunks = keys.open_stream(seeking, identity, 3 * CHUNK)
    assert seeking.tell() == header + 3 * ENC  # straight to the last chunk
    assert b"".join(chunks) == PLAIN[3 * CHUNK :]


def test_an_altered_chunk_after_the_offset_is_refused(sealed: tuple[str, bytes]) -> None:
    identity, data = sealed
    altered = bytearray(data)
    altered[-ENC - 500] ^= 1  # inside the third chunk
    with pytest.raises(keys.UnsealError):
        _open(bytes(altered), identity, CHUNK + 10)
    # An alteration before the offset is in no chunk that is read: what is yielded is intact.
    early = bytearray(data)
    early[len(data) - 3 * ENC - 1000] ^= 1  # inside the first chunk
    assert _open(bytes(early), identity, 2 * CHUNK) == PLAIN[2 * CHUNK :]


def test_a_chunk_moved_to_another_position_is_refused(sealed: tuple[str, bytes]) -> None:
    identity, data = sealed
    start = len(data) - 3 * ENC - 1016  # the first chunk: 3 full ones and a 1000-byte last one
    first, second = data[start : start + ENC], data[start + ENC : start + 2 * ENC]
    swapped = data[:start] + second + first + data[start + 2 * ENC :]
    with pytest.raises(keys.UnsealError):
        _open(swapped, identity, CHUNK)  # the first chunk's bytes where the second belongs


def test_a_cut_file_is_refused_from_an_offset(sealed: tuple[str, bytes]) -> None:
    identity, data = sealed
    cut = data[: len(data) - 1016]  # the last chunk dropped: the third is not flagged last
    for seekable in (True, False):
        with pytest.raises(keys.UnsealError):
            _open(cut, identity, 2 * CHUNK, seekable)
    with pytest.raises(keys.UnsealError):  # an offset past the end is "truncated" too
        _open(data, identity, len(PLAIN) + CHUNK)
    with pytest.raises(ValueError):
        keys.open_stream(io.BytesIO(data), identity, -1)
