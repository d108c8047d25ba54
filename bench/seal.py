"""Benchmark: `keys.seal` / `keys.unseal` throughput and memory against raw ChaCha20-Poly1305.

Run from the repository root:

    .venv/bin/python bench/seal.py [--size-mib 1024] [--runs 5] [--append-results]

Every run measures, on one thread and interleaved (the order rotates from run to run, so load
from other processes on the shared machine falls on all figures alike):

- the raw cipher, cache-hot: `ChaCha20Poly1305.encrypt`/`.decrypt` and `encrypt_into`/
  `decrypt_into` over one 64 KiB buffer that stays in the CPU cache, and `hashlib.sha256`;
- two sources, the same kind for seal and open:
  - "memory": seal reads a generated stream that copies one cache-hot 64 KiB pattern per
    chunk; open reads a replayed age file that copies one cache-hot 64 KiB ciphertext body
    plus that chunk's own 16-byte tag (the body is fixed and each chunk's plaintext is chosen
    so that it encrypts to it, so the file is a valid age file whose chunks all verify);
  - "file": seal reads a SIZE plaintext file and open reads the SIZE age file, both under /tmp
    and read once beforehand so they sit in the page cache (each read is one kernel copy);
- for each source, `keys.seal`/`keys.unseal` and a raw pipeline that moves the same bytes from
  the same source to the same discarding sink with nothing but `encrypt_into`/`decrypt_into`
  in between (the raw open pipeline decrypts the very same age payload with its payload key).

Each sealing figure runs in a fresh child process so its peak-RSS growth (`VmHWM`, reset just
before, minus RSS at start) is its own. Reported: best and median of `--runs` and the ratios
per run, by wall-clock time and, as a cross-check less disturbed by other processes on the
shared cores, by CPU time (user + system) of the measuring process. Each pipeline row has
two cipher ratios: to the cache-hot `encrypt_into`/`decrypt_into` (no allocation: the
strictest baseline) and to the cache-hot `encrypt`/`decrypt`, the plain AEAD call on 64 KiB
chunks: the call shared/NOTES.md gives its ChaCha20-Poly1305 speed for, and what the issue's
"raw ChaCha20-Poly1305 throughput on 64 KiB chunks" most plainly names.
`--append-results` appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

import keys  # noqa: E402
from keys import age as age_module  # noqa: E402
from keys._primitives import hkdf_sha256  # noqa: E402

CHUNK = 64 * 1024
TAG = 16
ENC = CHUNK + TAG
MIB = 1024 * 1024
NONCE = age_module._STREAM_NONCE


class _Source(io.RawIOBase):
    """`size` bytes of a fixed random pattern, produced without holding the stream."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._pattern = memoryview(os.urandom(CHUNK))  # sliced without a copy

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left, CHUNK)
        buffer[:n] = self._pattern[:n]
        self._left -= n
        return n


class _Replay(io.RawIOBase):
    """A valid age file: `prefix` (header and nonce), then `body || tags[i]` for each chunk.

    Fills each `readinto` request in full up to `_SPAN` chunks (a file fills it in full; a
    longer request gets a short read, which `io` allows). The payload is copied in one piece
    from a template of `_SPAN + 1` bodies, each followed by a tag-sized gap, and the tags of
    the chunks it covers are written over the gaps: one large copy and one 16-byte copy per
    chunk, as a contiguous age file in memory would cost, not a Python step per piece.
    """

    _SPAN = 8

    def __init__(self, prefix: bytes, body: bytes, tags: bytes) -> None:
        self._prefix = memoryview(prefix)
        self._template = memoryview((body + bytes(TAG)) * (self._SPAN + 1))
        self._tags = memoryview(tags)
        self._size = len(tags) // TAG * ENC
        self._pos = -len(prefix)  # payload offset; negative while still in the prefix

    def readable(self) -> bool:
        return True

    def readline(self, limit: int | None = -1) -> bytes:
        # Only the header is read by lines; it lies wholly in the prefix.
        assert self._pos < 0
        rest = self._prefix[len(self._prefix) + self._pos :]
        end = bytes(rest).find(b"\n")
        n = len(rest) if end < 0 else end + 1
        if limit is not None and limit >= 0:
            n = min(n, limit)
        self._pos += n
        return bytes(rest[:n])

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        pos = self._pos
        if pos < 0:
            n = min(len(view), -pos)
            view[:n] = self._prefix[len(self._prefix) + pos : len(self._prefix) + pos + n]
            self._pos += n
            return n
        n = min(len(view), self._size - pos, self._SPAN * ENC)
        off = pos % ENC
        view[:n] = self._template[off : off + n]
        # Each chunk the copy covers gets its own tag over the template's gap.
        first = pos // ENC
        for index in range(first, (pos + n - 1) // ENC + 1):
            start = max(index * ENC + CHUNK, pos)
            stop = min(index * ENC + ENC, pos + n)
            if start < stop:
                tag = index * TAG + start - index * ENC - CHUNK
                view[start - pos : stop - pos] = self._tags[tag : tag + stop - start]
        self._pos += n
        return n


class _Sink(io.RawIOBase):
    """Counts and discards what is written."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


def _status(field: str) -> int:
    """A `/proc/self/status` memory figure (kB) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _reset_peak() -> int:
    """Reset the peak RSS (`VmHWM`) to the current RSS and return that RSS.

    `ru_maxrss` would not do: Linux carries the parent's peak into a child across exec.
    """
    Path("/proc/self/clear_refs").write_text("5")  # "5" resets VmHWM (proc(5))
    return _status("VmRSS")


def _hot(size: int) -> dict[str, dict[str, float]]:
    """The raw cipher and SHA-256 over one cache-hot 64 KiB buffer."""
    cipher = ChaCha20Poly1305(os.urandom(32))
    data = os.urandom(CHUNK)
    nonce = bytes(12)
    sealed = cipher.encrypt(nonce, data, None)
    out_enc = memoryview(bytearray(ENC))
    out_dec = memoryview(bytearray(CHUNK))
    chunks = size // CHUNK
    loops: dict[str, Callable[[], object]] = {
        "encrypt": lambda: cipher.encrypt(nonce, data, None),
        "decrypt": lambda: cipher.decrypt(nonce, sealed, None),
        "encrypt_into": lambda: cipher.encrypt_into(nonce, data, None, out_enc),
        "decrypt_into": lambda: cipher.decrypt_into(nonce, sealed, None, out_dec),
        "sha256": lambda: hashlib.sha256(data).digest(),
    }
    rates = {}
    for name, call in loops.items():
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(chunks):
            call()
        rates[name] = {
            "rate": size / (time.perf_counter() - start),
            "cpu_rate": size / (time.process_time() - cpu),
        }
    return rates


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def _raw_seal(src: _Readable, dst: _Sink) -> None:
    """Read 64 KiB, `encrypt_into`, write: the pipeline `keys.seal` runs, without the format."""
    cipher = ChaCha20Poly1305(os.urandom(32))
    buf = memoryview(bytearray(CHUNK))
    out = memoryview(bytearray(ENC))
    counter = 0
    while n := src.readinto(buf):
        cipher.encrypt_into(NONCE.pack(counter, False), buf[:n], None, out[: n + TAG])
        dst.write(out[: n + TAG])
        counter += 1


def _raw_open(src: _Readable, dst: _Sink, key: bytes, prefix: int, chunks: int) -> None:
    """Skip the header, then read a chunk, `decrypt_into`, write: the age payload, no format."""
    cipher = ChaCha20Poly1305(key)
    src.read(prefix)
    buf = memoryview(bytearray(ENC))
    out = memoryview(bytearray(CHUNK))
    for counter in range(chunks):
        n = src.readinto(buf)
        cipher.decrypt_into(NONCE.pack(counter, counter == chunks - 1), buf[:n], None, out)
        dst.write(out)


def _read_only(src: _Readable, piece: int) -> None:
    """Read the source in pieces of the pipeline's size and drop them: the source's own cost."""
    buf = memoryview(bytearray(piece))
    while src.readinto(buf):
        pass


def _child(kind: str, source: str, size: int, tmp: Path) -> dict[str, float]:
    meta = json.loads((tmp / "meta.json").read_text())
    src: io.RawIOBase | io.BufferedReader
    if kind in ("seal", "raw-seal", "read-plain"):
        src = open(tmp / "plain.bin", "rb") if source == "file" else _Source(size)  # noqa: SIM115
    elif source == "file":
        src = open(tmp / "sealed.age", "rb")  # noqa: SIM115
    else:
        src = _Replay(
            (tmp / "prefix.bin").read_bytes(),
            (tmp / "body.bin").read_bytes(),
            (tmp / "tags.bin").read_bytes(),
        )
    sink = _Sink()
    key = bytes.fromhex(meta["payload_key"])
    before = _reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    if kind == "seal":
        assert keys.seal(src, sink, [meta["recipient"]]) == size  # type: ignore[arg-type]
    elif kind == "raw-seal":
        _raw_seal(src, sink)
    elif kind == "read-plain":
        _read_only(src, CHUNK)
    elif kind == "read-sealed":
        _read_only(src, ENC)
    elif kind == "open":
        assert keys.unseal(src, sink, meta["identity"]) == size  # type: ignore[arg-type]
    else:
        _raw_open(src, sink, key, meta["prefix"], size // CHUNK)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _status("VmHWM")
    src.close()
    if kind in ("raw-seal", "raw-open"):
        assert sink.size == size + (size // CHUNK) * TAG * (kind == "raw-seal"), kind
    return {"rate": size / elapsed, "cpu_rate": size / cpu, "rss_growth": peak - before}


def _run_child(kind: str, source: str, size: int, tmp: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, source, str(size), str(tmp)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout))


def _prepare(size: int, tmp: Path) -> None:
    """Write the plaintext file, the age file and its replay parts; read both files once."""
    identity, recipient = keys.generate_identity()
    file_key, nonce = os.urandom(16), os.urandom(16)
    prefix = age_module._header(file_key, [age_module._parse_recipient(recipient)]) + nonce
    payload_key = hkdf_sha256(file_key, nonce, b"payload")
    cipher = ChaCha20Poly1305(payload_key)
    body = os.urandom(CHUNK)
    body_int = int.from_bytes(body, "little")
    zeros = bytes(CHUNK)
    chunks = size // CHUNK
    tags = bytearray()
    for i in range(chunks):
        chunk_nonce = NONCE.pack(i, i == chunks - 1)
        # The encryption of zeros is the keystream; plaintext = body ^ keystream encrypts to
        # body, with this chunk's own tag.
        stream = int.from_bytes(cipher.encrypt(chunk_nonce, zeros, None)[:CHUNK], "little")
        plain = (body_int ^ stream).to_bytes(CHUNK, "little")
        sealed = cipher.encrypt(chunk_nonce, plain, None)
        assert sealed[:CHUNK] == body
        tags += sealed[CHUNK:]
    (tmp / "prefix.bin").write_bytes(prefix)
    (tmp / "body.bin").write_bytes(body)
    (tmp / "tags.bin").write_bytes(tags)
    meta = {
        "identity": identity,
        "recipient": recipient,
        "payload_key": payload_key.hex(),
        "prefix": len(prefix),
    }
    (tmp / "meta.json").write_text(json.dumps(meta))
    pattern = os.urandom(CHUNK)
    with (tmp / "plain.bin").open("wb") as fh:
        for _ in range(chunks):
            fh.write(pattern)
    with (tmp / "sealed.age").open("wb") as fh:
        fh.write(prefix)
        for i in range(chunks):
            fh.write(body)
            fh.write(tags[i * TAG : (i + 1) * TAG])
    # Warm the page cache, and check the crafted file is a valid age file (every tag checks).
    with (tmp / "sealed.age").open("rb") as fh:
        assert keys.unseal(fh, _Sink(), identity) == size  # type: ignore[arg-type]
    with (tmp / "plain.bin").open("rb") as fh:
        while fh.read(16 * MIB):
            pass


STEPS = [
    ("read-plain", "memory"),
    ("read-sealed", "memory"),
    ("read-plain", "file"),
    ("read-sealed", "file"),
    ("seal", "memory"),
    ("raw-seal", "memory"),
    ("open", "memory"),
    ("raw-open", "memory"),
    ("seal", "file"),
    ("raw-seal", "file"),
    ("open", "file"),
    ("raw-open", "file"),
    ("hot", ""),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--append-results", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, source, size, tmp = args.child
        print(json.dumps(_child(kind, source, int(size), Path(tmp))))
        return

    size = args.size_mib * MIB
    runs: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        _prepare(size, tmp)
        for r in range(args.runs):
            run: dict[str, dict[str, float]] = {}
            shift = r % len(STEPS)
            for kind, source in STEPS[shift:] + STEPS[:shift]:
                if kind == "hot":
                    run.update({f"hot {k}": v for k, v in _hot(size).items()})
                else:
                    run[f"{kind} {source}"] = _run_child(kind, source, size, tmp)
            runs.append(run)
            print(f"run {r + 1}/{args.runs} done", file=sys.stderr)
    load = os.getloadavg()[0]

    def mb(rate: float) -> str:
        return f"{rate / 1e6:,.0f}"

    def ratio(metric: str, name: str, base: str) -> str:
        best = max(r[name][metric] for r in runs) / max(r[base][metric] for r in runs)
        per_run = sorted(r[name][metric] / r[base][metric] for r in runs)
        return f"{best:.2f} ({per_run[0]:.2f}-{statistics.median(per_run):.2f}-{per_run[-1]:.2f})"

    # (label, measure, cache-hot baseline, raw pipeline over the same source)
    rows: list[tuple[str, str, str, str | None]] = [
        ("cache-hot `encrypt_into`", "hot encrypt_into", "hot encrypt_into", None),
        ("cache-hot `decrypt_into`", "hot decrypt_into", "hot decrypt_into", None),
        ("cache-hot `encrypt` (allocates its output)", "hot encrypt", "hot encrypt_into", None),
        ("cache-hot `decrypt` (allocates its output)", "hot decrypt", "hot decrypt_into", None),
        ("cache-hot `hashlib.sha256`", "hot sha256", "hot encrypt_into", None),
    ]
    for source in ("memory", "file"):
        rows += [
            (
                f"source alone, plaintext, {source}",
                f"read-plain {source}",
                "hot encrypt_into",
                None,
            ),
            (
                f"source alone, age file, {source}",
                f"read-sealed {source}",
                "hot decrypt_into",
                None,
            ),
            (f"raw seal pipeline, {source}", f"raw-seal {source}", "hot encrypt_into", None),
            (f"raw open pipeline, {source}", f"raw-open {source}", "hot decrypt_into", None),
            (
                f"**`keys.seal`**, {source}",
                f"seal {source}",
                "hot encrypt_into",
                f"raw-seal {source}",
            ),
            (
                f"**`keys.unseal`**, {source}",
                f"open {source}",
                "hot decrypt_into",
                f"raw-open {source}",
            ),
        ]

    def table(metric: str) -> list[str]:
        out = [
            "| measure | best MB/s | median MB/s | ratio to cache-hot `_into` cipher "
            "| ratio to cache-hot `encrypt`/`decrypt` "
            "| ratio to raw pipeline, same source | peak RSS growth |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for label, name, hot, pipeline in rows:
            values = [r[name][metric] for r in runs]
            cells = [
                label,
                mb(max(values)),
                mb(statistics.median(values)),
                ratio(metric, name, hot) if hot != name else "1.00",
                # The plain AEAD call, which allocates its output: the call shared/NOTES.md
                # measures, and the plainest reading of the "raw ChaCha20-Poly1305".
                ratio(metric, name, hot.removesuffix("_into"))
                if not name.startswith("hot ")
                else "",
                ratio(metric, name, pipeline) if pipeline else "",
                f"{max(r[name]['rss_growth'] for r in runs) / MIB:.1f} MiB"
                if "rss_growth" in runs[0][name]
                else "",
            ]
            out.append("| " + " | ".join(cells) + " |")
        return out

    lines = [
        "",
        f"## keys: age seal/open, the same kind of source for both "
        f"({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}; `bench/seal.py --size-mib {args.size_mib} "
        f"--runs {args.runs}`, one thread, 64 KiB chunks, runs interleaved (order rotated per "
        f"run). Load average at the end: {load:.2f}. Ratios: best/best, then "
        '(min-median-max) of the per-run ratios. "memory": seal reads a generated stream, '
        "open a replayed age file, both copying each chunk from a cache-hot 64 KiB buffer; "
        f'"file": seal reads a {args.size_mib} MiB plaintext file, open the '
        f"{args.size_mib} MiB age file, both in the page cache. Every sink discards.",
        "",
        "Wall-clock time:",
        "",
        *table("rate"),
        "",
        "CPU time of the measuring process (user + system; less disturbed by other jobs):",
        "",
        *table("cpu_rate"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append_results:
        with (ROOT / "bench" / "RESULTS.md").open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
