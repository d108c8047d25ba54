"""Sealed objects in the age v1 format (C2SP age spec), streamed in 64 KiB chunks.

The X25519 recipient type (`age1...`) and the `ssh-ed25519` type of the reference
implementation (`keys.age_ssh`, for recipients known by an OpenSSH key) are produced and
understood; other stanzas in a header are skipped while looking for one that opens with the
given identity. Files sealed here open with the stock `age` tool, and files it makes open here.

Streaming contract: plaintext is released chunk by chunk, each chunk only after its
Poly1305 tag verified. A truncated file (a missing final chunk) is detected at its end, so the
chunks before it have already been released when `UnsealError` is raised: callers that need
all-or-nothing must write to a temporary place and discard it on error.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import BinaryIO

from keys import _bech32, age_ssh
from keys._primitives import (
    TAG_SIZE,
    Aead,
    AuthenticationFailed,
    X25519Secret,
    equal,
    hkdf_sha256,
    hmac_sha256,
    random_bytes,
    x25519_base,
)

__all__ = [
    "CHUNK_SIZE",
    "ChunkSealer",
    "Sealer",
    "UnsealError",
    "generate_identity",
    "normalize_recipient",
    "open_chunks",
    "open_stream",
    "payload_size",
    "recipient_of",
    "seal",
    "start_stream",
    "unseal",
    "unseal_bytes",
]

CHUNK_SIZE = 64 * 1024
"""Plaintext bytes per STREAM chunk (age spec, "Payload")."""

_ENC_CHUNK = CHUNK_SIZE + TAG_SIZE
_INTRO = b"age-encryption.org/v1\n"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_IDENTITY_HRP = "age-secret-key-"
_RECIPIENT_HRP = "age"
_FILE_KEY_SIZE = 16
_NONCE_SIZE = 16
_COLUMNS = 64
# A header is a few hundred bytes per recipient; the caps bound what a hostile file can make
# us buffer before the header MAC can be checked.
_MAX_LINE = 16 * 1024
_MAX_HEADER = 1024 * 1024
_MAX_STANZAS = 1024
_ZERO_NONCE = bytes(12)
# age spec, "Payload": the STREAM nonce is an 11-byte big-endian chunk counter followed by a
# one-byte last-chunk flag. The counter never needs more than 64 bits here (2^64 chunks of
# 64 KiB is far beyond any file), so the top three bytes stay zero.
_STREAM_NONCE = struct.Struct(">3xQB")
_ALIGN = 64
# Chunks read per call into the source by `seal` and `unseal`: 8 x 64 KiB cuts those calls
# (system calls, for a file) by eight and still fits in the CPU's L2 cache (1-2 MiB on the
# machines of bench/RESULTS.md; 8 measured 1-2% faster than 4 there, 16 no faster than 8).
_READ_CHUNKS = 8


class UnsealError(Exception):
    """An age file could not be opened: malformed, altered, truncated, or no identity fits.

    The one error for every decryption failure, so callers cannot tell (or leak) which
    check failed.
    """


def _b64encode(data: bytes) -> bytes:
    # age uses standard base64 without padding (RFC 4648 section 3.2).
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes) -> bytes:
    """Decode canonical unpadded base64; anything else (padding, newlines, extra bits) fails."""
    if len(text) % 4 == 1 or b"=" in text:
        raise UnsealError("malformed age header")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise UnsealError("malformed age header") from None
    if _b64encode(data) != text:
        raise UnsealError("malformed age header")
    return data


def _format_identity(scalar: bytes) -> str:
    # age spec, "X25519 recipient type": identities are Bech32 with the HRP upper-cased.
    return _bech32.encode(_IDENTITY_HRP, scalar).upper()


def generate_identity() -> tuple[str, str]:
    """Return a fresh X25519 identity and its recipient: `("AGE-SECRET-KEY-1...", "age1...")`."""
    scalar = random_bytes(32)
    return _format_identity(scalar), _bech32.encode(_RECIPIENT_HRP, x25519_base(scalar))


def _parse_identity(identity: str) -> bytes:
    """Return the scalar of `identity`; an identity file's comment lines are ignored.

    Raises `ValueError` if it is not exactly one `AGE-SECRET-KEY-1...` string.
    """
    return _identity_key(identity)[0]


# A search page opens two sealed objects for each of up to 100 items: parse each identity once
# (Bech32 decode, the X25519 key object and its public point), not per object. Bounded; it
# holds only identities the process was handed already (the keyring that unwrapped them lives
# in the same process), and a malformed identity raises, so it is never cached.
_PARSED_IDENTITIES = 256  # a page holds at most 100 items, plus the vault's own identities


class _ParsedIdentities:
    """A bounded, thread-safe LRU map: identity string -> [scalar, X25519Secret or None].

    The key object is made on first use (it costs a scalar multiplication), so an identity
    put here by `identity_from_scalar` and never used to open anything costs nothing more.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, list[object]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, identity: str) -> bool:
        with self._lock:
            return identity in self._items

    def get(self, identity: str) -> tuple[bytes, X25519Secret] | None:
        with self._lock:
            entry = self._items.get(identity)
            if entry is None:
                return None
            self._items.move_to_end(identity)
        secret = entry[1]
        if secret is None:
            secret = entry[1] = X25519Secret(entry[0])  # type: ignore[arg-type]
        return entry[0], secret  # type: ignore[return-value]

    def put(self, identity: str, scalar: bytes, secret: X25519Secret | None) -> None:
        with self._lock:
            self._items[identity] = [scalar, secret]
            self._items.move_to_end(identity)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_IDENTITIES = _ParsedIdentities(_PARSED_IDENTITIES)


def forget_identities() -> None:
    """Drop every parsed identity this process holds in its cache.

    Call after crypto-shredding, so the shredded item's key does not outlive its wrapped copy in
    this process's memory until the cache happens to evict it.
    """
    _IDENTITIES.clear()


def identity_from_scalar(scalar: bytes) -> str:
    """Return the `AGE-SECRET-KEY-1...` string of the 32-byte X25519 `scalar`, and remember it
    parsed, so the objects it opens next skip the Bech32 decode (the keyring's unwrap)."""
    if len(scalar) != 32:
        raise ValueError("an X25519 identity is 32 bytes")
    identity = _format_identity(scalar)
    _IDENTITIES.put(identity, bytes(scalar), None)
    return identity


def _identity_key(identity: str) -> tuple[bytes, X25519Secret]:
    """Return the scalar of `identity` and its parsed key. Raises `ValueError` as
    `_parse_identity`."""
    cached = _IDENTITIES.get(identity)
    if cached is not None:
        return cached
    lines = [
        line.strip()
        for line in identity.strip().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(lines) != 1 or not lines[0].startswith("AGE-SECRET-KEY-1"):
        raise ValueError("not an age X25519 identity (AGE-SECRET-KEY-1...)")
    hrp, data = _bech32.decode(lines[0])
    if hrp != _IDENTITY_HRP or len(data) != 32:
        raise ValueError("not an age X25519 identity (AGE-SECRET-KEY-1...)")
    secret = X25519Secret(data)
    _IDENTITIES.put(identity, data, secret)
    return data, secret


@functools.lru_cache(maxsize=1024)
def _parse_recipient(recipient: str) -> bytes:
    """Return the X25519 point of `recipient`. Raises `ValueError` if it is not `age1...`.

    Cached (a recipient is public): the vault seals every object of an item to the same one,
    and the Bech32 checksum costs about a tenth of sealing a small object."""
    text = recipient.strip()
    if not text.startswith("age1"):
        raise ValueError("not an age X25519 recipient (age1...)")
    try:
        hrp, data = _bech32.decode(text)
    except ValueError as exc:
        raise ValueError(f"not an age X25519 recipient (age1...): {exc}") from None
    if hrp != _RECIPIENT_HRP or len(data) != 32:
        raise ValueError("not an age X25519 recipient (age1...)")
    return data


def recipient_of(identity: str) -> str:
    """Return the recipient of `identity`: `age1...`, or `ssh-ed25519 AAAA...` for an OpenSSH
    Ed25519 key file. Raises `ValueError` on a malformed one."""
    if age_ssh.is_identity(identity):
        return age_ssh.parse_identity(identity).recipient()
    return _bech32.encode(_RECIPIENT_HRP, _identity_key(identity)[1].public)


@functools.lru_cache(maxsize=1024)
def _recipient(recipient: str) -> bytes | age_ssh.SshRecipient:
    """Return the X25519 point of an `age1...` recipient, or the parsed `ssh-ed25519` key.
    Raises `ValueError` naming the problem."""
    text = recipient.strip()
    if text.startswith("ssh-"):
        if text.split()[0] != "ssh-ed25519":
            raise ValueError("only ssh-ed25519 SSH keys can be age recipients (not RSA or ECDSA)")
        return age_ssh.parse_recipient(text)
    return _parse_recipient(text)


def normalize_recipient(recipient: str) -> str:
    """Return `recipient` in its one canonical spelling: `age1...` (lower case), or
    `ssh-ed25519 AAAA...` without the comment.

    Raises `ValueError` naming the problem if it is neither a valid age X25519 recipient nor
    an OpenSSH Ed25519 public key.
    """
    parsed = _recipient(recipient.strip())
    if isinstance(parsed, age_ssh.SshRecipient):
        return parsed.line()
    return _bech32.encode(_RECIPIENT_HRP, parsed)


def _x25519_stanza(file_key: bytes, point: bytes) -> bytes:
    # age spec, "X25519 recipient stanza": a fresh ephemeral share per file and recipient;
    # the wrapping key binds both public values through the HKDF salt. A fixed zero nonce is
    # safe because every wrapping key is used exactly once.
    ephemeral = X25519Secret(random_bytes(32))  # one key object for both uses
    share = ephemeral.public
    shared = ephemeral.shared(point)
    wrap_key = hkdf_sha256(shared, share + point, _X25519_INFO)
    body = Aead(wrap_key).seal(_ZERO_NONCE, file_key)
    encoded = _b64encode(body)
    lines = [encoded[i : i + _COLUMNS] for i in range(0, len(encoded), _COLUMNS)]
    if not lines or len(lines[-1]) == _COLUMNS:
        lines.append(b"")  # the body always ends with a line shorter than 64 columns
    return b"-> X25519 " + _b64encode(share) + b"\n" + b"".join(line + b"\n" for line in lines)


def _stanza(file_key: bytes, recipient: bytes | age_ssh.SshRecipient) -> bytes:
    if isinstance(recipient, age_ssh.SshRecipient):
        return recipient.stanza(file_key, random_bytes(32))
    return _x25519_stanza(file_key, recipient)


def _header(file_key: bytes, recipients: Sequence[bytes | age_ssh.SshRecipient]) -> bytes:
    """`recipients`: X25519 points, or parsed `ssh-ed25519` keys."""
    head = _INTRO + b"".join(_stanza(file_key, r) for r in recipients) + b"---"
    # age spec, "Header": the MAC covers everything up to and including "---", so no stanza
    # can be added, removed or altered without the file key.
    mac = hmac_sha256(hkdf_sha256(file_key, b"", b"header"), head)
    return head + b" " + _b64encode(mac) + b"\n"


def _start(recipients: Sequence[bytes | age_ssh.SshRecipient]) -> tuple[bytes, bytes]:
    """Return what an age file starts with (header and payload nonce) and its payload key."""
    file_key = random_bytes(_FILE_KEY_SIZE)
    nonce = random_bytes(_NONCE_SIZE)
    return _header(file_key, recipients) + nonce, hkdf_sha256(file_key, nonce, b"payload")


def start_stream(recipients: Sequence[str]) -> tuple[bytes, bytes]:
    """Begin an age file sealed to `recipients` whose payload is written later, in pieces.

    Return the file's first bytes (the header, then the payload nonce) and the 32-byte payload
    key, which `ChunkSealer` seals the chunks with. The payload key opens the file as well as
    any identity of `recipients` does: keep it sealed wherever it is kept. For a file written
    over several sessions (a resumable upload); `Sealer` is the one-session form, and both
    write the same bytes for the same plaintext, file key and nonce.

    Raises `ValueError` as `Sealer` does.
    """
    if isinstance(recipients, str):
        raise TypeError("recipients must be a sequence of strings, not one string")
    if not recipients:
        raise ValueError("at least one recipient is required")
    return _start([_recipient(r) for r in recipients])


def payload_size(plaintext_size: int) -> int:
    """The size of the payload (the chunks, after the nonce) of a `plaintext_size` file."""
    count = max(1, -(-plaintext_size // CHUNK_SIZE))
    return plaintext_size + count * TAG_SIZE


class ChunkSealer:
    """Seal an age payload in whole chunks, from chunk `counter` on, with a payload key of
    `start_stream`.

    `seal` takes whole 64 KiB chunks, except for the file's last piece (`last=True`: the
    final chunk, 1 to 64 KiB, flagged as the last; empty only when the whole file is). The
    caller knows which piece ends the file; a full chunk at the end must be sealed with
    `last=True` too (age spec, "Payload": no empty chunk follows data).
    """

    def __init__(self, payload_key: bytes, counter: int = 0) -> None:
        if len(payload_key) != 32 or counter < 0:
            raise ValueError("a 32-byte payload key and a chunk counter >= 0 are required")
        self._aead = Aead(payload_key)
        self.counter = counter  # the number of the next chunk
        self._done = False

    def seal(self, data: bytes | bytearray | memoryview, *, last: bool = False) -> bytearray:
        """Return the sealed chunks of `data`. Raises `ValueError` for a piece that is not
        whole chunks (unless `last`), an empty last chunk after data, or a seal after the last.
        """
        out = bytearray(self.sealed_size(len(data), last=last))
        self.seal_into(data, memoryview(out), last=last)
        return out

    def sealed_size(self, size: int, *, last: bool = False) -> int:
        """The size of `size` plaintext bytes once sealed (`seal`'s rules)."""
        count = -(-size // CHUNK_SIZE)
        if last and count == 0:
            count = 1
        return size + count * TAG_SIZE

    def seal_into(
        self, data: bytes | bytearray | memoryview, out: memoryview, *, last: bool = False
    ) -> int:
        """Seal `data` into the start of `out` (at least `sealed_size` bytes); return the
        bytes written. Raises `ValueError` as `seal` does, with nothing written then."""
        view = memoryview(data).cast("B")
        size = len(view)
        if self._done:
            raise ValueError("the last chunk is sealed already")
        if not last and size % CHUNK_SIZE:
            raise ValueError("only the last piece may end inside a chunk")
        if last and size == 0 and self.counter:
            raise ValueError("an empty last chunk may not follow data")
        total = self.sealed_size(size, last=last)
        if len(out) < total:
            raise ValueError(f"{total} bytes do not fit in {len(out)}")
        count = (total - size) // TAG_SIZE
        seal_into = self._aead.seal_into
        for index in range(count):
            piece = view[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
            start = index * _ENC_CHUNK
            flag = last and index == count - 1
            seal_into(
                _STREAM_NONCE.pack(self.counter, flag),
                piece,
                out[start : start + len(piece) + TAG_SIZE],
            )
            self.counter += 1
        self._done = last
        return total


def open_chunks(
    payload_key: bytes, data: bytes | bytearray | memoryview, counter: int = 0
) -> Iterator[bytes]:
    """Yield the plaintext of whole sealed chunks `data` (none of them the last), numbered
    from `counter`: what `ChunkSealer` wrote so far, read back. Raises `UnsealError` on a
    chunk that does not authenticate or a piece that is not whole chunks."""
    view = memoryview(data).cast("B")
    if len(view) % _ENC_CHUNK:
        raise UnsealError("not whole chunks")
    aead = Aead(payload_key)
    for start in range(0, len(view), _ENC_CHUNK):
        try:
            yield aead.open(_STREAM_NONCE.pack(counter, False), view[start : start + _ENC_CHUNK])
        except AuthenticationFailed:
            raise UnsealError("age payload authentication failed") from None
        counter += 1


class Sealer:
    """Seal a stream written in pieces of any size (for streamed uploads) to `recipients`.

    The header is written to `dst` at once; full 64 KiB chunks follow as data arrives; `close`
    writes the final chunk with the last-chunk flag. Leaving a `with` block through an
    exception does **not** write the final chunk, so an aborted upload never becomes a valid
    (silently truncated) age file. `dst` is never closed by the sealer; it receives views of
    a reused buffer, which the `io` contract lets it read only during `write`.

    `reserve`, if given, is called with each chunk's sealed size and returns a writable view of
    exactly that size: the chunk is sealed into it, and `dst.write` then receives that very
    view object, so a destination that lent its own buffer has nothing to copy.

    `recipients` are `age1...` X25519 recipients or `ssh-ed25519 AAAA...` OpenSSH public keys.
    Raises `ValueError` if `recipients` is empty or holds a malformed recipient.
    """

    def __init__(
        self,
        dst: BinaryIO,
        recipients: Sequence[str],
        *,
        reserve: Callable[[int], memoryview] | None = None,
    ) -> None:
        if isinstance(recipients, str):
            raise TypeError("recipients must be a sequence of strings, not one string")
        if not recipients:
            raise ValueError("at least one recipient is required")
        start, payload_key = _start([_recipient(r) for r in recipients])
        self._dst = dst
        self._reserve = reserve
        self._aead = Aead(payload_key)
        self._pending = bytearray(CHUNK_SIZE)
        self._fill = 0
        self._out = memoryview(bytearray(_ENC_CHUNK))
        self._counter = 0
        self._size = 0
        self._closed = False
        _write_all(dst, memoryview(start))

    @property
    def size(self) -> int:
        """Plaintext bytes written so far."""
        return self._size

    def _emit(self, chunk: bytes | bytearray | memoryview, last: bool) -> None:
        size = len(chunk) + TAG_SIZE
        out = self._out[:size] if self._reserve is None else self._reserve(size)
        if len(out) != size:
            raise ValueError(f"reserve({size}) returned {len(out)} bytes")
        self._aead.seal_into(_STREAM_NONCE.pack(self._counter, last), chunk, out)
        _write_all(self._dst, out)
        self._counter += 1

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add `data` to the stream. Raises `ValueError` after `close`."""
        if self._closed:
            raise ValueError("write to a closed Sealer")
        view = memoryview(data).cast("B")
        self._size += len(view)
        pos = 0
        end = len(view)
        pending = self._pending
        while pos < end:
            if self._fill == CHUNK_SIZE:
                # A full chunk is only known not to be the last once more data arrives; the
                # spec forbids an empty final chunk after data, so we never emit one.
                self._emit(pending, last=False)
                self._fill = 0
            if self._fill == 0 and end - pos > CHUNK_SIZE:
                # Fast path: whole chunks straight from the caller's buffer, no copy.
                self._emit(view[pos : pos + CHUNK_SIZE], last=False)
                pos += CHUNK_SIZE
                continue
            take = min(CHUNK_SIZE - self._fill, end - pos)
            pending[self._fill : self._fill + take] = view[pos : pos + take]
            self._fill += take
            pos += take

    def close(self) -> None:
        """Write the final chunk (flag set); further calls do nothing. `dst` stays open."""
        if self._closed:
            return
        self._closed = True
        self._emit(memoryview(self._pending)[: self._fill], last=True)

    def __enter__(self) -> Sealer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True


def _write_all(dst: BinaryIO, view: memoryview) -> None:
    """Write all of `view`, looping over short writes of raw (unbuffered) streams.

    `view` is a reused buffer: per the `io` contract (`BufferedIOBase.write`), `dst` may use
    it only during the call, so a destination that keeps data must copy it.
    """
    written = dst.write(view)
    while written is not None and written < len(view):
        view = view[written:]
        written = dst.write(view)


def _read_into(src: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `src` until it is full or `src` ends; return the bytes read."""
    filled = 0
    readinto = getattr(src, "readinto", None)
    while filled < len(view):
        if readinto is not None:
            n = readinto(view[filled:])
        else:
            piece = src.read(len(view) - filled)
            n = len(piece)
            view[filled : filled + n] = piece
        if not n:
            break
        filled += n
    return filled


def seal(src: BinaryIO, dst: BinaryIO, recipients: Sequence[str]) -> int:
    """Seal everything `src` yields into `dst` as an age v1 file; return the plaintext size.

    Memory stays flat (a read of eight 64 KiB chunks and two chunk buffers). Raises
    `ValueError` on a malformed or missing recipient; errors of `src` and `dst` propagate and
    leave `dst` without a final chunk.
    """
    sealer = Sealer(dst, recipients)
    # As in `_chunks`: read chunks and one byte more, so a full chunk is sealed as "not last"
    # only once a byte after it is known to exist; the byte is carried over. The first read is
    # of one chunk, the next ones of `_READ_CHUNKS`, as there.
    span = CHUNK_SIZE
    buf = memoryview(bytearray(_ALIGN + span + 1))
    base = _ALIGN
    total = 0
    while True:
        have = (_ALIGN - base) + _read_into(src, buf[_ALIGN : base + span + 1])
        end = base + have
        while end - base > CHUNK_SIZE:
            sealer._emit(buf[base : base + CHUNK_SIZE], last=False)
            base += CHUNK_SIZE
            total += CHUNK_SIZE
        if have == span + 1:
            carried = buf[base]
            if span < _READ_CHUNKS * CHUNK_SIZE:
                span = _READ_CHUNKS * CHUNK_SIZE
                buf = memoryview(bytearray(_ALIGN + span + 1))
            buf[_ALIGN - 1] = carried
            base = _ALIGN - 1
            continue
        # End of input: the rest (a full chunk at most) is the last chunk; it is empty only
        # when the whole plaintext is.
        sealer._emit(buf[base:end], last=True)
        total += end - base
        sealer._size = total
        sealer._closed = True
        return total


def seal_bytes(data: bytes, recipients: Sequence[str]) -> bytes:
    """Return `data` sealed as an age v1 file to `recipients` (small documents held whole; the
    counterpart of `unseal_bytes`). Raises `ValueError` as `seal` does."""
    out = io.BytesIO()
    seal(io.BytesIO(data), out, recipients)
    return out.getvalue()


def _read_line(src: BinaryIO, budget: int) -> bytes:
    line = src.readline(min(_MAX_LINE, budget))
    if not line.endswith(b"\n"):
        raise UnsealError("malformed age header")
    return line


# age spec: stanza arguments are non-empty strings of VCHAR (0x21-0x7E).
_ARG = re.compile(rb"[\x21-\x7e]+")


def _is_arg(arg: bytes) -> bool:
    return _ARG.fullmatch(arg) is not None


def _read_header(src: BinaryIO) -> tuple[list[tuple[list[bytes], bytes]], bytes, bytes]:
    """Parse the header; return (stanzas as (args, body), the MAC'd bytes, the MAC)."""
    raw = bytearray()
    line = src.readline(len(_INTRO))
    if line != _INTRO:
        raise UnsealError("not an age v1 file")
    raw += line
    stanzas: list[tuple[list[bytes], bytes]] = []
    line = _read_line(src, _MAX_HEADER - len(raw))
    while line.startswith(b"-> "):
        raw += line
        args = line[3:-1].split(b" ")
        if not all(_is_arg(a) for a in args) or len(stanzas) >= _MAX_STANZAS:
            raise UnsealError("malformed age header")
        body = bytearray()
        while True:
            body_line = _read_line(src, _MAX_HEADER - len(raw))
            raw += body_line
            text = body_line[:-1]
            if len(text) > _COLUMNS:
                raise UnsealError("malformed age header")
            body += _b64decode(text)
            if len(text) < _COLUMNS:
                break
        stanzas.append((args, bytes(body)))
        line = _read_line(src, _MAX_HEADER - len(raw))
    if not stanzas or not line.startswith(b"--- "):
        raise UnsealError("malformed age header")
    raw += b"---"
    mac = _b64decode(line[4:-1])
    if len(mac) != 32:
        raise UnsealError("malformed age header")
    return stanzas, bytes(raw), mac


def _unwrap(stanzas: list[tuple[list[bytes], bytes]], secret: X25519Secret) -> bytes:
    """Return the file key from the first X25519 stanza that opens with `secret`."""
    own = secret.public
    for args, body in stanzas:
        if args[0] != b"X25519":
            continue  # another recipient type (or GREASE): not for this identity
        # The spec makes a malformed X25519 stanza fatal, not skippable.
        if len(args) != 2 or len(body) != _FILE_KEY_SIZE + TAG_SIZE:
            raise UnsealError("malformed age header")
        share = _b64decode(args[1])
        if len(share) != 32:
            raise UnsealError("malformed age header")
        try:
            shared = secret.shared(share)
        except ValueError:
            raise UnsealError("malformed age header") from None
        wrap_key = hkdf_sha256(shared, share + own, _X25519_INFO)
        try:
            return Aead(wrap_key).open(_ZERO_NONCE, body)
        except AuthenticationFailed:
            continue
    raise UnsealError("no identity matches this age file")


def _unwrap_ssh(stanzas: list[tuple[list[bytes], bytes]], identity: age_ssh.SshIdentity) -> bytes:
    """Return the file key from the first `ssh-ed25519` stanza that opens with `identity`."""
    for args, body in stanzas:
        try:
            file_key = identity.unwrap(args, body)
        except ValueError:
            raise UnsealError("malformed age header") from None
        if file_key is not None:
            return file_key
    raise UnsealError("no identity matches this age file")


def _payload_aead(src: BinaryIO, identity: str) -> Aead:
    """Read and authenticate the header; return the payload cipher, positioned at chunk 0.

    `identity` is an `AGE-SECRET-KEY-1...` string or the text of an unencrypted OpenSSH
    Ed25519 private key file.
    """
    try:
        if age_ssh.is_identity(identity):
            ssh: age_ssh.SshIdentity | None = age_ssh.parse_identity(identity)
        else:
            ssh, secret = None, _identity_key(identity)[1]
    except ValueError as exc:
        raise UnsealError(str(exc)) from None
    stanzas, raw, mac = _read_header(src)
    file_key = _unwrap_ssh(stanzas, ssh) if ssh is not None else _unwrap(stanzas, secret)
    # Checked before any payload byte is decrypted (age spec, "Header").
    if not equal(hmac_sha256(hkdf_sha256(file_key, b"", b"header"), raw), mac):
        raise UnsealError("age header MAC mismatch")
    nonce = bytearray(_NONCE_SIZE)
    if _read_into(src, memoryview(nonce)) != _NONCE_SIZE:
        raise UnsealError("truncated age file")
    return Aead(hkdf_sha256(file_key, bytes(nonce), b"payload"))


def _chunks(src: BinaryIO, counter: int = 0) -> Iterator[tuple[bytes, memoryview]]:
    """Yield (nonce, ciphertext) per chunk, with the last-chunk rules of the spec; the first
    chunk read is chunk number `counter` (`open_stream` with an offset seeks to it).

    Reads one byte past every chunk to learn whether it is the last, so each chunk is opened
    exactly once, with the flag its position demands: a full chunk followed by EOF must carry
    the last flag, which is how a dropped final chunk is caught. Reads `_READ_CHUNKS` chunks
    at a time (fewer calls into `src`, fewer system calls for a file); memory stays flat.
    The yielded view is valid until the next iteration.
    """
    # The carried look-ahead byte sits just before an aligned offset, so the bulk read that
    # follows it lands 64-byte aligned (a misaligned destination costs memcpy ~30% here).
    # The first read is of one chunk, the next ones of `_READ_CHUNKS`: most sealed objects
    # (titles, texts) fit in one chunk, and a buffer is zeroed when made (2 KB objects opened
    # 12% faster than with a full-size buffer from the start; growing step by step made 200 KB
    # objects 3x slower, through malloc's handling of the sizes in between).
    span = _ENC_CHUNK
    buf = memoryview(bytearray(_ALIGN + span + 1))
    base = _ALIGN  # where the unread data starts; _ALIGN - 1 once a byte is carried
    while True:
        have = (_ALIGN - base) + _read_into(src, buf[_ALIGN : base + span + 1])
        end = base + have
        # Every chunk with at least one byte after it is not the last one.
        while end - base > _ENC_CHUNK:
            yield _STREAM_NONCE.pack(counter, False), buf[base : base + _ENC_CHUNK]
            base += _ENC_CHUNK
            counter += 1
        if have == span + 1:
            # The buffer was filled: src may hold more. Carry the look-ahead byte over.
            carried = buf[base]
            if span < _READ_CHUNKS * _ENC_CHUNK:
                span = _READ_CHUNKS * _ENC_CHUNK
                buf = memoryview(bytearray(_ALIGN + span + 1))
            buf[_ALIGN - 1] = carried
            base = _ALIGN - 1
            continue
        # End of file: what is left is the last chunk, at most one full chunk. It may be empty
        # only when it is the only chunk (empty plaintext); an empty or missing chunk after
        # data is an error.
        have = end - base
        if have < TAG_SIZE or (have == TAG_SIZE and counter > 0):
            raise UnsealError("truncated age file")
        yield _STREAM_NONCE.pack(counter, True), buf[base:end]
        return


def open_stream(src: BinaryIO, identity: str, offset: int = 0) -> Iterator[bytes]:
    """Return an iterator over the plaintext of the age file `src`, chunk by chunk.

    The header is read and authenticated at once, so a wrong identity or a damaged header
    raises `UnsealError` here, before a response is started. Each chunk is yielded only once
    its tag verified; the iterator raises `UnsealError` on a bad or missing chunk, and chunks
    yielded before that were authentic but the file as a whole was not: discard them.

    With `offset`, the plaintext starts at that byte (an HTTP range): the chunks before the
    one holding it are passed over unread (`src.seek`, when `src` can) or read and dropped
    undecrypted. Nothing is lost by not opening them: each chunk is authenticated on its own,
    at its own position (its STREAM nonce is its index, and the last chunk's flag), which is
    how the age format allows random access. An offset at or past the end of the plaintext
    raises `UnsealError` (truncated) from the iterator; callers check ranges first.
    """
    if offset < 0:
        raise ValueError("offset must not be negative")
    aead = _payload_aead(src, identity)
    index, skip = divmod(offset, CHUNK_SIZE)
    if index:
        _pass_over(src, index * _ENC_CHUNK)
    return _plaintext(src, aead, index, skip)


def _pass_over(src: BinaryIO, length: int) -> None:
    if src.seekable():
        src.seek(length, io.SEEK_CUR)  # past the end: `_chunks` finds nothing, "truncated"
        return
    scratch = memoryview(bytearray(min(length, _READ_CHUNKS * _ENC_CHUNK)))
    while length:
        got = _read_into(src, scratch[: min(len(scratch), length)])
        if not got:
            return  # the end came early: `_chunks` says "truncated"
        length -= got


def _plaintext(src: BinaryIO, aead: Aead, first: int = 0, skip: int = 0) -> Iterator[bytes]:
    for nonce, chunk in _chunks(src, first):
        try:
            plain = aead.open(nonce, chunk)
        except AuthenticationFailed:
            raise UnsealError("age payload authentication failed") from None
        if skip:
            plain, skip = plain[skip:], 0
        yield plain


def unseal(src: BinaryIO, dst: BinaryIO, identity: str) -> int:
    """Decrypt the age file `src` into `dst` with `identity`; return the plaintext size.

    Each 64 KiB chunk is written only after its tag verified. Raises `UnsealError` on any
    failure (malformed header, no matching identity, header MAC, a chunk's tag, truncation);
    chunks written before the error were authentic, but the file was not: **callers that
    need all-or-nothing must unseal into a temporary file and discard it on error.**
    `dst` receives views of a reused buffer, which the `io` contract lets it read only during
    `write`; a destination that keeps data must copy it.
    """
    # Private: `dst` sees this buffer only after the chunk's tag verified (a failed check
    # zeroes it, see `Aead.open_into`).
    out = memoryview(bytearray(CHUNK_SIZE))
    total = 0
    aead = _payload_aead(src, identity)
    open_into = aead.open_into
    for nonce, chunk in _chunks(src):
        size = len(chunk) - TAG_SIZE
        plain = out if size == CHUNK_SIZE else out[:size]
        try:
            open_into(nonce, chunk, plain)
        except AuthenticationFailed:
            raise UnsealError("age payload authentication failed") from None
        _write_all(dst, plain)
        total += size
    return total


def unseal_bytes(data: bytes, identity: str) -> bytes:
    """Open the age file held whole in `data` with `identity`; return its plaintext.

    All or nothing: every chunk is authenticated before anything is returned. Meant for small
    sealed objects read whole (metadata, extracted texts shown in search results); it skips the
    streaming buffers of `unseal` and holds the plaintext in memory, so use `unseal` for large
    files. Raises `UnsealError` exactly where `unseal` would.
    """
    src = io.BytesIO(data)
    aead = _payload_aead(src, identity)
    payload = memoryview(data)[src.tell() :]
    size = len(payload)
    count, tail = divmod(size, _ENC_CHUNK)
    if tail:
        count += 1
    last = tail or _ENC_CHUNK
    # The rules of `_chunks`: the piece at the end is the last chunk; it may be empty (a tag
    # alone) only when it is the only chunk.
    if size == 0 or last < TAG_SIZE or (last == TAG_SIZE and count > 1):
        raise UnsealError("truncated age file")
    pieces = []
    for index in range(count):
        start = index * _ENC_CHUNK
        chunk = payload[start : start + _ENC_CHUNK]
        try:
            pieces.append(aead.open(_STREAM_NONCE.pack(index, index == count - 1), chunk))
        except AuthenticationFailed:
            raise UnsealError("age payload authentication failed") from None
    return pieces[0] if count == 1 else b"".join(pieces)
