"""age v1 sealing across the read batches of `seal` and `unseal`, and private output buffers.

`seal` and `unseal` read several chunks per call into the source (`_READ_CHUNKS`), so the
last-chunk rules must hold at every batch boundary, not only inside the first batch.
"""

from __future__ import annotations

import io
import os

import pytest

import keys
from keys import age as age_module
from keys._primitives import Aead, AuthenticationFailed
from tests.unit.keys.age_support import payload_start, seal_bytes

CHUNK = keys.CHUNK_SIZE
ENC_CHUNK = CHUNK + 16
BATCH = age_module._READ_CHUNKS
CHUNK_COUNTS = [BATCH - 1, BATCH, BATCH + 1, 2 * BATCH - 1, 2 * BATCH, 2 * BATCH + 1]


class _Recorder(io.RawIOBase):
    """A destination that copies every write, as the `io` contract requires of a keeper."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


@pytest.mark.parametrize("chunks", CHUNK_COUNTS)
def test_dropped_final_chunk_is_refused_at_any_batch_position(chunks: int) -> None:
    identity, recipient = keys.generate_identity()
    data = os.urandom((chunks - 1) * CHUNK + 100)
    sealed = seal_bytes(data, [recipient])
    start = payload_start(sealed)
    without_last = sealed[: start + (chunks - 1) * ENC_CHUNK]
    dst = _Recorder()
    with pytest.raises(keys.UnsealError):
        keys.unseal(io.BytesIO(without_last), dst, identity)
    # The now-final full chunk lacks the last flag: it and nothing after it is released.
    assert b"".join(dst.writes) == data[: (chunks - 2) * CHUNK]


@pytest.mark.parametrize("chunks", [BATCH + 1, 2 * BATCH + 1])
def test_every_truncation_across_batches_is_refused(chunks: int) -> None:
    identity, recipient = keys.generate_identity()
    data = os.urandom((chunks - 1) * CHUNK + 100)
    sealed = seal_bytes(data, [recipient])
    start = payload_start(sealed)
    cuts = {start + k * ENC_CHUNK + d for k in range(1, chunks) for d in (-1, 0, 1, 16)}
    cuts |= {len(sealed) - 1, len(sealed) - 16}
    for cut in sorted(cuts):
        dst = _Recorder()
        with pytest.raises(keys.UnsealError):
            keys.unseal(io.BytesIO(sealed[:cut]), dst, identity)
        released = b"".join(dst.writes)
        assert len(released) % CHUNK == 0 and data.startswith(released), cut


def test_trailing_data_after_a_batch_is_refused() -> None:
    identity, recipient = keys.generate_identity()
    sealed = seal_bytes(os.urandom(BATCH * CHUNK), [recipient])
    for extra in (b"\x00", os.urandom(ENC_CHUNK), os.urandom(ENC_CHUNK + 1)):
        with pytest.raises(keys.UnsealError):
            keys.unseal(io.BytesIO(sealed + extra), _Recorder(), identity)


def test_altered_chunk_in_any_batch_releases_only_the_chunks_before_it() -> None:
    identity, recipient = keys.generate_identity()
    chunks = 2 * BATCH + 1
    data = os.urandom((chunks - 1) * CHUNK + 100)
    sealed = seal_bytes(data, [recipient])
    start = payload_start(sealed)
    for k in range(chunks):
        for offset in (0, 1000, ENC_CHUNK - 1):
            pos = min(start + k * ENC_CHUNK + offset, len(sealed) - 1)
            altered = bytearray(sealed)
            altered[pos] ^= 0x04
            dst = _Recorder()
            with pytest.raises(keys.UnsealError):
                keys.unseal(io.BytesIO(bytes(altered)), dst, identity)
            # Every write was a whole authentic chunk; the altered one never reached dst.
            assert all(len(w) == CHUNK for w in dst.writes)
            assert b"".join(dst.writes) == data[: k * CHUNK], (k, offset)
            stream = keys.open_stream(io.BytesIO(bytes(altered)), identity)
            for i in range(k):
                assert next(stream) == data[i * CHUNK : (i + 1) * CHUNK]
            with pytest.raises(keys.UnsealError):
                next(stream)


class _Trickle(io.RawIOBase):
    """A raw stream that returns at most 7 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._in = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._in.readinto(memoryview(buffer)[:7])


def test_short_reads_across_batches_lose_nothing() -> None:
    identity, recipient = keys.generate_identity()
    data = os.urandom((2 * BATCH + 1) * CHUNK)
    sealed = io.BytesIO()
    assert keys.seal(_Trickle(data), sealed, [recipient]) == len(data)  # type: ignore[arg-type]
    out = io.BytesIO()
    assert keys.unseal(_Trickle(sealed.getvalue()), out, identity) == len(data)  # type: ignore[arg-type]
    assert out.getvalue() == data


def test_failed_tag_check_leaves_no_plaintext_in_the_output_buffer() -> None:
    # cryptography's decrypt_into writes the plaintext before it checks the tag; the wrapper
    # must not leave that unauthenticated plaintext in the caller's buffer.
    aead = Aead(os.urandom(32))
    nonce = bytes(12)
    plain = b"testimony " * 100
    sealed = bytearray(aead.seal(nonce, plain))
    sealed[-1] ^= 1
    out = memoryview(bytearray(b"\xaa" * len(plain)))
    with pytest.raises(AuthenticationFailed):
        aead.open_into(nonce, bytes(sealed), out)
    assert bytes(out) == bytes(len(plain))
    # And a verified chunk does come out.
    assert aead.open_into(nonce, aead.seal(nonce, plain), out) == len(plain)
    assert bytes(out) == plain
