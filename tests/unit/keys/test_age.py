"""age v1 sealing: vectors, layout, and tampering (against the stock `age` tool:
tests/integration/test_age_tool.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tracemalloc
from pathlib import Path

import pytest

import keys
from keys import age as age_module
from tests.unit.keys.age_support import payload_start, seal_bytes, unseal_checked

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "age"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
IDENTITY = (VECTORS / "identity.txt").read_text()
CHUNK = keys.CHUNK_SIZE
ENC_CHUNK = CHUNK + 16


def _pattern(n: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(n))


# --- identities and recipients -------------------------------------------------------------


def test_recipient_of_matches_age_keygen_vector() -> None:
    # identity.txt was made by age-keygen, which records the public key in a comment.
    public = next(
        line.split(": ")[1] for line in IDENTITY.splitlines() if line.startswith("# public key")
    )
    assert keys.recipient_of(IDENTITY) == public
    assert public == MANIFEST["recipient"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "age1",
        "AGE-SECRET-KEY-1QQQQ",
        "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        "Age1nz8ljm7d5vhj8eyf97tvtlru4hjn88ks9yhufkegms6kejd4l9msruf6nu",
        # one character changed: the Bech32 checksum must catch it
        "age1nz8ljm7d5vhj8eyf97tvtlru4hjn88ks9yhufkegms6kejd4l9msruf6na",
    ],
)
def test_malformed_recipient_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        keys.seal(io.BytesIO(b"x"), io.BytesIO(), [bad])


def test_recipient_list_must_not_be_empty_or_a_string() -> None:
    with pytest.raises(ValueError):
        keys.Sealer(io.BytesIO(), [])
    with pytest.raises(TypeError):
        keys.Sealer(io.BytesIO(), MANIFEST["recipient"])


def test_identity_from_scalar_gives_the_identity_and_remembers_it_parsed() -> None:
    identity, recipient = keys.generate_identity()
    scalar = age_module._parse_identity(identity)
    keys.forget_identities()
    assert identity not in age_module._IDENTITIES
    assert age_module.identity_from_scalar(scalar) == identity
    assert identity in age_module._IDENTITIES
    assert unseal_checked(seal_bytes(b"opens", [recipient]), identity) == b"opens"
    with pytest.raises(ValueError):
        age_module.identity_from_scalar(scalar[:31])


def test_parsed_identity_cache_is_bounded() -> None:
    keys.forget_identities()
    made = [keys.generate_identity()[0] for _ in range(age_module._PARSED_IDENTITIES + 10)]
    for identity in made:
        keys.recipient_of(identity)  # parses it into the cache
    assert made[-1] in age_module._IDENTITIES
    assert made[0] not in age_module._IDENTITIES  # the oldest went first
    assert len(age_module._IDENTITIES._items) == age_module._PARSED_IDENTITIES


# --- known-answer vectors, both directions --------------------------------------------------


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_vector_opens_with_keys(name: str) -> None:
    expected = MANIFEST["files"][name]
    plain = unseal_checked((VECTORS / name).read_bytes(), IDENTITY)
    assert len(plain) == expected["size"]
    assert hashlib.sha256(plain).hexdigest() == expected["sha256"]
    if "three-recipients" not in name:
        assert plain == _pattern(expected["size"])


# --- live interoperability ------------------------------------------------------------------


def test_sealer_output_has_the_same_layout_as_seal() -> None:
    identity, recipient = keys.generate_identity()
    for size in (0, CHUNK, 2 * CHUNK, 2 * CHUNK + 1):
        data = os.urandom(size)
        out = io.BytesIO()
        sealer = keys.Sealer(out, [recipient])
        sealer.write(data)
        sealer.close()
        sealer.close()  # idempotent
        assert len(out.getvalue()) == len(seal_bytes(data, [recipient]))
        assert unseal_checked(out.getvalue(), identity) == data
        with pytest.raises(ValueError):
            sealer.write(b"more")


def test_multiple_recipients_each_open() -> None:
    pairs = [keys.generate_identity() for _ in range(3)]
    sealed = seal_bytes(b"testimony", [r for _, r in pairs])
    for identity, _ in pairs:
        assert unseal_checked(sealed, identity) == b"testimony"


def test_aborted_sealer_never_writes_a_final_chunk() -> None:
    identity, recipient = keys.generate_identity()
    out = io.BytesIO()
    with pytest.raises(RuntimeError), keys.Sealer(out, [recipient]) as sealer:
        sealer.write(b"x" * (2 * CHUNK + 5))
        raise RuntimeError("upload interrupted")
    with pytest.raises(keys.UnsealError):
        unseal_checked(out.getvalue(), identity)


# --- failures: one error type, nothing unauthenticated released -----------------------------


@pytest.fixture(scope="module")
def three_chunks() -> tuple[str, bytes, bytes]:
    identity, recipient = keys.generate_identity()
    data = os.urandom(2 * CHUNK + 1000)
    return identity, data, seal_bytes(data, [recipient])


def test_wrong_identity_is_refused(three_chunks: tuple[str, bytes, bytes]) -> None:
    _, _, sealed = three_chunks
    other, _ = keys.generate_identity()
    with pytest.raises(keys.UnsealError):
        unseal_checked(sealed, other)


def test_malformed_identity_is_an_unseal_error(three_chunks: tuple[str, bytes, bytes]) -> None:
    with pytest.raises(keys.UnsealError):
        unseal_checked(three_chunks[2], "AGE-SECRET-KEY-1NOTAKEY")


def test_every_truncation_is_refused(three_chunks: tuple[str, bytes, bytes]) -> None:
    identity, data, sealed = three_chunks
    start = payload_start(sealed)
    cuts = sorted(
        {0, 1, 10, start - 17, start - 1, start, start + 1, start + 15, start + 16}
        | {start + k * ENC_CHUNK + d for k in (1, 2) for d in (-1, 0, 1, 16)}
        | {len(sealed) - 1}
    )
    for cut in cuts:
        out = io.BytesIO()
        with pytest.raises(keys.UnsealError):
            keys.unseal(io.BytesIO(sealed[:cut]), out, identity)
        with pytest.raises(keys.UnsealError):
            keys.unseal_bytes(sealed[:cut], identity)
        # Whatever was released is an authenticated prefix of whole chunks.
        released = out.getvalue()
        assert len(released) % CHUNK == 0 and data.startswith(released)


def test_dropped_final_chunk_is_refused_after_authentic_chunks(
    three_chunks: tuple[str, bytes, bytes],
) -> None:
    identity, data, sealed = three_chunks
    without_last = sealed[: payload_start(sealed) + 2 * ENC_CHUNK]
    out = io.BytesIO()
    with pytest.raises(keys.UnsealError):
        keys.unseal(io.BytesIO(without_last), out, identity)
    # Chunk 0 was authentic and released; chunk 1 (a full chunk at EOF) must carry the last
    # flag, fails, and is not released.
    assert out.getvalue() == data[:CHUNK]
    with pytest.raises(keys.UnsealError):
        keys.unseal_bytes(without_last, identity)  # all or nothing: no authentic prefix either
    stream = keys.open_stream(io.BytesIO(without_last), identity)
    assert next(stream) == data[:CHUNK]
    with pytest.raises(keys.UnsealError):
        next(stream)


def test_flipped_bit_anywhere_is_refused(three_chunks: tuple[str, bytes, bytes]) -> None:
    identity, data, sealed = three_chunks
    start = payload_start(sealed)
    # Every byte of the header and the nonce, and bytes at the edges of every chunk.
    positions = list(range(start)) + [
        start + k * ENC_CHUNK + d for k in range(3) for d in (0, 1, 500, 999, 1015)
    ]
    positions += [start + k * ENC_CHUNK + d for k in range(2) for d in (CHUNK - 1, CHUNK + 15)]
    for pos in positions:
        altered = bytearray(sealed)
        altered[pos] ^= 0x01
        out = io.BytesIO()
        with pytest.raises(keys.UnsealError):
            keys.unseal(io.BytesIO(bytes(altered)), out, identity)
        with pytest.raises(keys.UnsealError):
            keys.unseal_bytes(bytes(altered), identity)
        released = out.getvalue()
        if pos < start:
            assert released == b"", f"header bit {pos}: payload released before the MAC check"
        else:
            chunk_index = (pos - start) // ENC_CHUNK
            assert released == data[: chunk_index * CHUNK], f"byte {pos}"


def test_unauthenticated_chunk_is_never_yielded(three_chunks: tuple[str, bytes, bytes]) -> None:
    identity, data, sealed = three_chunks
    altered = bytearray(sealed)
    altered[payload_start(sealed) + ENC_CHUNK + 7] ^= 0x80
    stream = keys.open_stream(io.BytesIO(bytes(altered)), identity)
    assert next(stream) == data[:CHUNK]
    with pytest.raises(keys.UnsealError):
        next(stream)


def test_trailing_data_is_refused(three_chunks: tuple[str, bytes, bytes]) -> None:
    identity, _, sealed = three_chunks
    for extra in (b"\x00", b"x" * 16, os.urandom(ENC_CHUNK)):
        with pytest.raises(keys.UnsealError):
            unseal_checked(sealed + extra, identity)


def _craft(plain_chunks: list[tuple[bytes, bool]]) -> tuple[str, bytes]:
    """Build an age file chunk by chunk with chosen last-chunk flags (spec edge cases)."""
    from keys._primitives import Aead, hkdf_sha256, random_bytes

    identity, recipient = keys.generate_identity()
    file_key = random_bytes(16)
    nonce = random_bytes(16)
    point = age_module._parse_recipient(recipient)
    head = age_module._header(file_key, [point]) + nonce
    aead = Aead(hkdf_sha256(file_key, nonce, b"payload"))
    body = b"".join(
        aead.seal(age_module._STREAM_NONCE.pack(i, last), chunk)
        for i, (chunk, last) in enumerate(plain_chunks)
    )
    return identity, head + body


def test_crafted_file_with_correct_flags_opens() -> None:
    # Guard for the crafted cases below: the crafting itself is right.
    identity, sealed = _craft([(b"a" * CHUNK, False), (b"b", True)])
    assert unseal_checked(sealed, identity) == b"a" * CHUNK + b"b"


def test_full_final_chunk_is_legal() -> None:
    identity, sealed = _craft([(b"a" * CHUNK, False), (b"b" * CHUNK, True)])
    assert unseal_checked(sealed, identity) == b"a" * CHUNK + b"b" * CHUNK


def test_empty_final_chunk_after_data_is_refused() -> None:
    # age spec: the last chunk may be empty only if the whole payload is empty.
    identity, sealed = _craft([(b"a" * CHUNK, False), (b"", True)])
    with pytest.raises(keys.UnsealError):
        unseal_checked(sealed, identity)


def test_empty_payload_needs_its_one_empty_final_chunk() -> None:
    identity, sealed = _craft([(b"", True)])
    assert unseal_checked(sealed, identity) == b""
    identity, sealed = _craft([])
    with pytest.raises(keys.UnsealError):
        unseal_checked(sealed, identity)


def test_short_chunk_without_last_flag_is_refused() -> None:
    identity, sealed = _craft([(b"a" * 100, False)])
    with pytest.raises(keys.UnsealError):
        unseal_checked(sealed, identity)


def test_last_flag_on_a_middle_chunk_is_refused() -> None:
    identity, sealed = _craft([(b"a" * CHUNK, True), (b"b", True)])
    with pytest.raises(keys.UnsealError):
        unseal_checked(sealed, identity)


@pytest.mark.parametrize(
    "header",
    [
        b"age-encryption.org/v2\n",
        b"not age at all",
        b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n",  # no stanza
        b"age-encryption.org/v1\n-> X25519\n\n--- " + b"A" * 43 + b"\n",
        b"age-encryption.org/v1\n->  X25519 a\n\n--- " + b"A" * 43 + b"\n",  # empty argument
        b"age-encryption.org/v1\n-> X25519 " + b"A" * 5000,  # unterminated line
    ],
)
def test_malformed_headers_are_refused(header: bytes) -> None:
    identity, _ = keys.generate_identity()
    with pytest.raises(keys.UnsealError):
        unseal_checked(header + b"\x00" * 64, identity)


def test_padded_or_non_canonical_base64_in_the_header_is_refused() -> None:
    identity, recipient = keys.generate_identity()
    sealed = seal_bytes(b"data", [recipient])
    lines = sealed.split(b"\n")
    # The MAC line: "--- " + 43 characters; add padding, then change the unused low bits.
    padded = sealed.replace(lines[3], lines[3] + b"=")
    with pytest.raises(keys.UnsealError):
        unseal_checked(padded, identity)
    last = lines[3][-1:]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1 : (alphabet.index(last) ^ 1) + 1]
    with pytest.raises(keys.UnsealError):
        unseal_checked(sealed.replace(lines[3], lines[3][:-1] + twin), identity)


# --- memory ---------------------------------------------------------------------------------


class _Zeros(io.RawIOBase):
    """A readable stream of `size` zero bytes that holds nothing in memory."""

    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        buffer[:n] = bytes(n)
        self._left -= n
        return n


class _Sink(io.RawIOBase):
    """A writable stream that keeps only a running SHA-256."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        return len(data)


def test_memory_stays_flat_for_a_large_stream(tmp_path: Path) -> None:
    identity, recipient = keys.generate_identity()
    size = 32 * 1024 * 1024
    sealed = tmp_path / "large.age"
    tracemalloc.start()
    try:
        with sealed.open("wb") as fh:
            keys.seal(_Zeros(size), fh, [recipient])  # type: ignore[arg-type]
        _, peak_seal = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink = _Sink()
        with sealed.open("rb") as fh:
            assert keys.unseal(fh, sink, identity) == size  # type: ignore[arg-type]
        _, peak_open = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.hash.digest() == hashlib.sha256(bytes(size)).digest()
    # One read of eight 64 KiB chunks and a chunk or two of output, whatever the size of the
    # stream (32 MiB here).
    assert peak_seal < 2 * 1024 * 1024, peak_seal
    assert peak_open < 2 * 1024 * 1024, peak_open


class _Trickle(io.RawIOBase):
    """A raw stream that reads at most 7 and writes at most 100 bytes per call."""

    def __init__(self, data: bytes = b"") -> None:
        self._in = io.BytesIO(data)
        self.out = bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._in.readinto(memoryview(buffer)[:7])

    def write(self, data: bytes) -> int:  # type: ignore[override]
        piece = bytes(memoryview(data)[:100])
        self.out += piece
        return len(piece)


def test_short_reads_and_short_writes_lose_nothing() -> None:
    identity, recipient = keys.generate_identity()
    data = os.urandom(3 * CHUNK + 123)
    sealed = _Trickle(data)
    assert keys.seal(sealed, sealed, [recipient]) == len(data)  # type: ignore[arg-type]
    opened = _Trickle(bytes(sealed.out))
    assert keys.unseal(opened, opened, identity) == len(data)  # type: ignore[arg-type]
    assert bytes(opened.out) == data


def test_open_stream_checks_the_header_before_returning() -> None:
    # A retrieval can refuse before it starts a response: no iteration needed to fail.
    _, recipient = keys.generate_identity()
    sealed = seal_bytes(b"testimony", [recipient])
    with pytest.raises(keys.UnsealError):
        keys.open_stream(io.BytesIO(sealed), keys.generate_identity()[0])
    altered = bytearray(sealed)
    altered[30] ^= 1
    with pytest.raises(keys.UnsealError):
        keys.open_stream(io.BytesIO(bytes(altered)), keys.generate_identity()[0])


def test_sealer_seals_into_reserved_views_and_writes_those_very_views() -> None:
    identity, recipient = keys.generate_identity()
    arena = memoryview(bytearray(4 * 1024 * 1024))
    lent: list[memoryview] = []
    used = 0

    def reserve(size: int) -> memoryview:
        nonlocal used
        view = arena[used : used + size]
        used += size
        lent.append(view)
        return view

    class Dst(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()
            self.in_place: list[bool] = []

        def writable(self) -> bool:
            return True

        def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
            self.in_place.append(any(data is view for view in lent))
            self.data += data
            return len(data)

    plain = os.urandom(3 * 64 * 1024 + 77)
    dst = Dst()
    with keys.Sealer(dst, [recipient], reserve=reserve) as sealer:  # type: ignore[arg-type]
        sealer.write(plain[:100])
        sealer.write(plain[100:])
    # The header is written from the sealer's own buffer; every chunk from a lent view.
    assert dst.in_place == [False, True, True, True, True]
    assert bytes(arena[:used]) == bytes(dst.data[len(dst.data) - used :])
    out = io.BytesIO()
    assert keys.unseal(io.BytesIO(bytes(dst.data)), out, identity) == len(plain)
    assert out.getvalue() == plain


def test_sealer_refuses_a_reserved_view_of_the_wrong_size() -> None:
    _, recipient = keys.generate_identity()
    sealer = keys.Sealer(io.BytesIO(), [recipient], reserve=lambda size: memoryview(bytearray(8)))
    with pytest.raises(ValueError, match="reserve"):
        sealer.write(bytes(64 * 1024 + 1))
