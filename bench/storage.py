"""Benchmark: object store writers stream with flat memory, at what speed against a plain baseline.

Run from the repository root:

    .venv/bin/python bench/storage.py [--size-mib 1024] [--s3-size-mib 256] [--append-results]

Local: writes SIZE through `LocalObjectStore.writer` in 64 KiB chunks (what `keys.Sealer` emits)
and, as the baseline, the same bytes with `open().write` + `fsync` into the same file system.
S3: starts the moto server on loopback with TLS (as the tests do) and writes S3-SIZE through
`S3ObjectStore.writer` (16 MiB parts); the baseline is minio's own `put_object` of the same bytes
from a file with the same part size. For each it reports MB/s, the ratio to its baseline, and this
process's peak RSS growth over its RSS before the write (sampled every 20 ms). Everything under
/tmp is deleted afterwards; moto is stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.s3server import _free_port, _self_signed, _wait_for_tls  # noqa: E402
from vault.storage import LocalObjectStore  # noqa: E402
from vault.storage.adapters.s3 import DEFAULT_PART_SIZE, S3ObjectStore  # noqa: E402

CHUNK = 64 * 1024
MIB = 1024 * 1024


class PeakRss:
    """Sample this process's RSS in a thread; `growth` is the peak over the starting RSS."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / MIB


def chunks(size: int) -> Iterator[bytes]:
    block = os.urandom(CHUNK)  # one block reused: memory must not depend on the size
    sent = 0
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece


def timed(action: Callable[[], None]) -> tuple[float, float]:
    """Return (seconds, peak RSS growth MiB) of `action`."""
    with PeakRss() as rss:
        began = time.perf_counter()
        action()
        seconds = time.perf_counter() - began
    return seconds, rss.growth_mib


def run_case(case: str, size: int, work: Path, port: int, cert: Path) -> dict[str, float]:
    """Run one measurement in this process (called in a fresh child, so RSS is comparable)."""
    if case.startswith("local"):
        store = LocalObjectStore(work / "store")
        target = work / "plain.bin"
        if case == "local-base":

            def action() -> None:
                with target.open("wb") as out:
                    for piece in chunks(size):
                        out.write(piece)
                    out.flush()
                    os.fsync(out.fileno())
        else:

            def action() -> None:
                with store.writer(f"items/{case}") as out:
                    for piece in chunks(size):
                        out.write(piece)
                    out.commit()
    else:
        s3 = S3ObjectStore(
            f"127.0.0.1:{port}",
            "bench",
            "bench-secret",
            "bench",
            ca_file=cert,
            object_lock=True,
            retention_days=1,
        )
        source = work / "source.bin"
        if case == "s3-base":
            with source.open("wb") as out:
                for piece in chunks(size):
                    out.write(piece)

            def action() -> None:
                with source.open("rb") as src:
                    s3.client.put_object(
                        "bench",
                        f"base-{size}",
                        src,
                        length=-1,
                        part_size=DEFAULT_PART_SIZE,
                        num_parallel_uploads=1,
                    )
        else:

            def action() -> None:
                with s3.writer(f"items/ours-{size}") as out:
                    for piece in chunks(size):
                        out.write(piece)
                    out.commit()

    seconds, growth = timed(action)
    return {"seconds": seconds, "rss_mib": growth}


def child(case: str, size: int, work: Path, port: int, cert: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            *(sys.executable, __file__, "--child", case, "--child-size", str(size)),
            *("--child-work", str(work), "--child-port", str(port), "--child-cert", str(cert)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    for leftover in (work / "plain.bin", work / "source.bin"):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(work / "store", ignore_errors=True)
    return result


def row(label: str, size: int, base: dict[str, float], ours: dict[str, float]) -> str:
    mbs = size / 1e6
    cells = [
        label,
        f"{size // MIB} MiB",
        f"{mbs / base['seconds']:.0f} MB/s",
        f"{mbs / ours['seconds']:.0f} MB/s",
        f"{base['seconds'] / ours['seconds']:.2f}",
        f"{base['rss_mib']:.1f} MiB",
        f"{ours['rss_mib']:.1f} MiB",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--s3-size-mib", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--append-results", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-cert", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_case(
            args.child, args.child_size, args.child_work, args.child_port, args.child_cert
        )
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="tvault-bench-storage-", dir="/tmp"))
    rows = []
    try:
        cert, key = _self_signed(work)
        port = _free_port()
        with (work / "moto.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)),
                    *("--ssl-cert", str(cert), "--ssl-key", str(key)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                problem = _wait_for_tls(port, cert, proc)
                if problem:
                    raise SystemExit(f"moto did not start: {problem}")
                setup = S3ObjectStore(
                    f"127.0.0.1:{port}", "bench", "bench-secret", "bench", ca_file=cert
                )
                setup.client.make_bucket("bench", object_lock=True)
                setup.close()
                size = args.size_mib * MIB
                rows.append(
                    row(
                        "LocalObjectStore",
                        size,
                        child("local-base", size, work, port, cert),
                        child("local-ours", size, work, port, cert),
                    )
                )
                for s3_mib in args.s3_size_mib:
                    size = s3_mib * MIB
                    rows.append(
                        row(
                            "S3ObjectStore (moto, TLS)",
                            size,
                            child("s3-base", size, work, port, cert),
                            child("s3-ours", size, work, port, cert),
                        )
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "",
        "## Object store writers (bench/storage.py)",
        "",
        f"{now}; {platform.machine()}, {os.cpu_count()} shared cores, CPython "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}. Local baseline: "
        "`open().write` 64 KiB chunks + `fsync` into the same file system (/tmp). S3 baseline: "
        "minio `put_object` from a file (16 MiB parts, one at a time) to moto on loopback with "
        "TLS. RSS: peak growth of a fresh writing process over its RSS before the write "
        "(each measurement in its own process).",
        "",
        "| store | size | baseline | ours | ratio to baseline | baseline RSS growth "
        "| ours RSS growth |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with (ROOT / "bench" / "RESULTS.md").open("a") as out:
            out.write(text)


if __name__ == "__main__":
    main()
