"""Benchmark: `keys.seal` / `keys.unseal` throughput and memory against raw ChaCha20-Poly1305.

Run from the repository root:

    .venv/bin/python bench/seal.py [--size-mib 1024] [--runs 5] [--append-results]

Measures, in one run on one thread: raw `ChaCha20Poly1305.encrypt` and `.decrypt` on 64 KiB
chunks, `hashlib.sha256` on 64 KiB chunks, then `keys.seal` of a SIZE stream (generated, not
read from disk) into a discarding sink, and `keys.unseal` of that sealed stream (kept in a
temporary file under /tmp, deleted afterwards) into a discarding sink. Each sealing figure runs
in a fresh child process so its peak-RSS growth (`ru_maxrss` minus RSS at start) is its own.
The best of `--runs` is reported. `--append-results` appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keys  # noqa: E402

CHUNK = 64 * 1024
MIB = 1024 * 1024


class _Source(io.RawIOBase):
    """`size` bytes of a fixed random pattern, produced without holding the stream."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._pattern = os.urandom(CHUNK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left, CHUNK)
        buffer[:n] = self._pattern[:n]
        self._left -= n
        return n


class _Sink(io.RawIOBase):
    """Counts and discards what is written."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _raw(size: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    cipher = ChaCha20Poly1305(os.urandom(32))
    data = os.urandom(CHUNK)
    nonce = bytes(12)
    chunks = size // CHUNK
    start = time.perf_counter()
    for _ in range(chunks):
        sealed = cipher.encrypt(nonce, data, None)
    enc = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(chunks):
        cipher.decrypt(nonce, sealed, None)
    dec = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(chunks):
        hashlib.sha256(data).digest()
    sha = time.perf_counter() - start
    return {"chacha_encrypt": size / enc, "chacha_decrypt": size / dec, "sha256": size / sha}


def _raw_seal_pipeline(size: int) -> None:
    """The same source and sink as `keys.seal`, with nothing but the cipher in between."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    cipher = ChaCha20Poly1305(os.urandom(32))
    src, dst = _Source(size), _Sink()
    buf = memoryview(bytearray(CHUNK))
    out = memoryview(bytearray(CHUNK + 16))
    counter = 0
    while n := src.readinto(buf):
        cipher.encrypt_into(counter.to_bytes(12, "big"), buf[:n], None, out[: n + 16])
        dst.write(out[: n + 16])
        counter += 1


def _raw_open_pipeline(size: int, path: str) -> None:
    """The same file and sink as `keys.unseal`, with nothing but the cipher in between."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    cipher = ChaCha20Poly1305(bytes(32))
    dst = _Sink()
    buf = memoryview(bytearray(CHUNK + 16))
    out = memoryview(bytearray(CHUNK))
    counter = 0
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            cipher.decrypt_into(counter.to_bytes(12, "big"), buf[:n], None, out[: n - 16])
            dst.write(out[: n - 16])
            counter += 1
    assert counter * CHUNK >= size


def _make_raw_file(size: int, path: Path) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    cipher = ChaCha20Poly1305(bytes(32))
    src = _Source(size)
    buf = memoryview(bytearray(CHUNK))
    with path.open("wb") as fh:
        counter = 0
        while n := src.readinto(buf):
            fh.write(cipher.encrypt(counter.to_bytes(12, "big"), buf[:n], None))
            counter += 1


def _child_seal(size: int, raw: bool) -> dict[str, float]:
    _, recipient = keys.generate_identity()
    before = _rss()
    start = time.perf_counter()
    if raw:
        _raw_seal_pipeline(size)
    else:
        keys.seal(_Source(size), _Sink(), [recipient])  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rate": size / elapsed, "rss_growth": peak - before}


def _child_open(size: int, path: str, identity: str) -> dict[str, float]:
    before = _rss()
    start = time.perf_counter()
    if identity == "raw":
        _raw_open_pipeline(size, path)
    else:
        with open(path, "rb") as fh:
            assert keys.unseal(fh, _Sink(), identity) == size  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rate": size / elapsed, "rss_growth": peak - before}


def _run_child(*args: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    )
    return dict(json.loads(result.stdout))


def _seal_to_file(size: int, path: Path) -> str:
    identity, recipient = keys.generate_identity()
    with path.open("wb") as fh:
        keys.seal(_Source(size), fh, [recipient])  # type: ignore[arg-type]
    return identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--append-results", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size = args.child[0], int(args.child[1])
        if kind in ("seal", "raw-seal"):
            print(json.dumps(_child_seal(size, raw=kind == "raw-seal")))
        else:
            print(json.dumps(_child_open(size, args.child[2], args.child[3])))
        return

    size = args.size_mib * MIB
    # The machine is shared: each run measures raw and keys back to back, so load from other
    # processes hits both alike, and the best of the runs is kept for each figure.
    raw: list[dict[str, float]] = []
    seals: list[dict[str, float]] = []
    raw_seals: list[dict[str, float]] = []
    opens: list[dict[str, float]] = []
    raw_opens: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp) / "bench.age"
        raw_path = Path(tmp) / "bench.raw"
        identity = _seal_to_file(size, path)
        _make_raw_file(size, raw_path)
        for _ in range(args.runs):
            raw.append(_raw(size))
            seals.append(_run_child("seal", str(size)))
            raw_seals.append(_run_child("raw-seal", str(size)))
            opens.append(_run_child("open", str(size), str(path), identity))
            raw_opens.append(_run_child("open", str(size), str(raw_path), "raw"))
    best = {k: max(r[k] for r in raw) for k in raw[0]}
    raw_seal = max(s["rate"] for s in raw_seals)
    raw_open = max(o["rate"] for o in raw_opens)
    seal = max(s["rate"] for s in seals)
    open_ = max(o["rate"] for o in opens)
    seal_rss = max(s["rss_growth"] for s in seals)
    open_rss = max(o["rss_growth"] for o in opens)
    load = os.getloadavg()[0]

    def mb(rate: float) -> str:
        return f"{rate / 1e6:,.0f} MB/s"

    lines = [
        "",
        f"## keys: age seal/open ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or '?'}, "
        f"Python {platform.python_version()}; `bench/seal.py --size-mib {args.size_mib}`, "
        f"best of {args.runs}, one thread, 64 KiB chunks. Seal reads a generated stream and "
        "discards its output; open reads the sealed file from /tmp (page cache) and discards "
        "the plaintext. "
        f"Load average at the end: {load:.2f} (the machine is shared).",
        "",
        "| measure | throughput | ratio to raw ChaCha20-Poly1305 | peak RSS growth |",
        "| --- | --- | --- | --- |",
        f"| raw `ChaCha20Poly1305.encrypt` | {mb(best['chacha_encrypt'])} | 1.00 | |",
        f"| raw `ChaCha20Poly1305.decrypt` | {mb(best['chacha_decrypt'])} | 1.00 | |",
        f"| `hashlib.sha256` | {mb(best['sha256'])} | "
        f"{best['sha256'] / best['chacha_encrypt']:.2f} of encrypt | |",
        f"| raw pipeline: same source, `encrypt_into`, same sink | {mb(raw_seal)} | "
        f"{raw_seal / best['chacha_encrypt']:.2f} of encrypt | |",
        f"| raw pipeline: same file, `decrypt_into`, same sink | {mb(raw_open)} | "
        f"{raw_open / best['chacha_decrypt']:.2f} of decrypt | |",
        f"| `keys.seal` ({args.size_mib} MiB) | {mb(seal)} | "
        f"{seal / best['chacha_encrypt']:.2f} of encrypt; "
        f"{seal / raw_seal:.2f} of its raw pipeline | {seal_rss / MIB:.1f} MiB |",
        f"| `keys.unseal` ({args.size_mib} MiB) | {mb(open_)} | "
        f"{open_ / best['chacha_decrypt']:.2f} of decrypt; "
        f"{open_ / raw_open:.2f} of its raw pipeline | {open_rss / MIB:.1f} MiB |",
        "",
        "Target: seal and open >= 0.85 of raw ChaCha20-Poly1305, peak RSS growth < 32 MiB.",
        "The raw cipher rows reuse one 64 KiB buffer that stays in the CPU cache; the raw",
        "pipelines move the same bytes through the same source and sink as `keys` does, so",
        "their ratio is the cost of the age format and the streaming code alone.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append_results:
        with (ROOT / "bench" / "RESULTS.md").open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
