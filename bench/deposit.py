"""Benchmark: a deposit through the HTTP API into the embedded vault, against the raw pipeline.

Run from the repository root:

    .venv/bin/python bench/deposit.py [--size-mib 1024] [--runs 5] [--concurrent 50]
        [--append-results]

In one run: (1) writes a SIZE file under /tmp and, for context, measures the disk: a plain copy
of the file with fsync (a deposit writes and fsyncs as much; the raw pipeline does not);
(2) creates a vault (`tvault init`) and starts `tvault serve` on loopback; (3) `--runs` rounds,
each measuring the raw single-core pipeline over the file (read 64 KiB chunks, SHA-256,
ChaCha20-Poly1305 encrypt: the floor any sealed deposit pays) and then depositing the file
through `POST /v1/cases/{case}/items` with httpx streaming it, while the server's RSS is
sampled every 50 ms; (4) deposits `--concurrent` files of 100 KB at once and checks every one
arrived. Each round's throughput is a ratio to its own raw run (the machine is shared and
noisy); the median round is reported with every round's ratio. RSS is the growth over the
server's RSS before the first upload. Everything under /tmp is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.headers import to_headers

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 64 * 1024
MIB = 1024 * 1024
TVAULT = [sys.executable, "-m", "vault.cli"]


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for _ in range(size // MIB):
            out.write(block)


def raw_pipeline(path: Path) -> tuple[float, str]:
    """Return MB/s of read + SHA-256 + ChaCha20-Poly1305 on one thread, and the digest."""
    aead = ChaCha20Poly1305(os.urandom(32))
    nonce = bytes(12)
    digest = hashlib.sha256()
    start = time.perf_counter()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            aead.encrypt(nonce, chunk, None)
    return path.stat().st_size / 1e6 / (time.perf_counter() - start), digest.hexdigest()


def disk_write(path: Path, target: Path) -> float:
    """Return MB/s of copying `path` to `target` in 64 KiB writes, then fsync (the disk's part)."""
    start = time.perf_counter()
    with path.open("rb") as source, target.open("wb") as out:
        while chunk := source.read(CHUNK):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - start
    target.unlink()
    return path.stat().st_size / 1e6 / elapsed


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*TVAULT, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.05)


def chunks(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            yield chunk


async def concurrent(url: str, token: str, case: str, count: int) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    meta = {"kind": "media", "title": "bench", "consent": "therapy"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=300, limits=httpx.Limits(max_connections=count)
    ) as client:

        async def one(n: int) -> bool:
            body = n.to_bytes(4, "big") * 25_000
            response = await client.post(
                f"/v1/cases/{case}/items", headers=to_headers(meta), content=body
            )
            return (
                response.status_code == 201
                and response.json()["sha256"] == hashlib.sha256(body).hexdigest()
            )

        results = await asyncio.gather(*(one(n) for n in range(count)))
        listed = (await client.get(f"/v1/cases/{case}/items")).json()
    return sum(results) if len(listed) >= sum(results) else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5, help="Uploads, each after a raw run.")
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    size = args.size_mib * MIB

    work = Path(tempfile.mkdtemp(prefix="tvault-bench-", dir="/tmp"))
    server = None
    try:
        source = work / "input.bin"
        make_file(source, size)
        _, expected = raw_pipeline(source)  # also warms the page cache with the source
        disk = disk_write(source, work / "copy.bin")

        home = work / "vault"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        env.update(
            TVAULT_HOME=str(home),
            TVAULT_PASSPHRASE="bench passphrase",  # noqa: S106 (a throwaway vault)
            TVAULT_MAX_UPLOAD_BYTES=str(size + 1),
            PYTHONPATH=str(ROOT),
        )
        run("init", "--admin", "admin", "--allow-weak-passphrase", env=env)
        run("users", "add", "tina", "--role", "therapist", env=env)
        token = run("token", "tina", env=env)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "server.log").open("wb")
        server = subprocess.Popen(
            [*TVAULT, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        rounds: list[dict[str, float]] = []
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            case = client.post("/v1/cases", json={"name": "bench"}).json()["id"]
            sampler = RssSampler(server.pid)
            base_rss = sampler.process.memory_info().rss
            sampler.start()
            for _ in range(args.runs):
                # The raw pipeline just before each upload: both see the same machine load.
                raw, digest = raw_pipeline(source)
                if digest != expected:
                    raise SystemExit("the source file changed between rounds")
                cpu_before = sum(sampler.process.cpu_times()[:2])
                client_before = sum(psutil.Process().cpu_times()[:2])
                start = time.perf_counter()
                response = client.post(
                    f"/v1/cases/{case}/items",
                    content=chunks(source),
                    headers={
                        "Content-Length": str(size),
                        **to_headers({"kind": "media", "title": "bench", "consent": "therapy"}),
                    },
                )
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                if response.json()["sha256"] != expected:
                    raise SystemExit("the vault reports another SHA-256 than the file's")
                rounds.append(
                    {
                        "raw": raw,
                        "api": size / 1e6 / elapsed,
                        "elapsed": elapsed,
                        "server_cpu": sum(sampler.process.cpu_times()[:2]) - cpu_before,
                        "client_cpu": sum(psutil.Process().cpu_times()[:2]) - client_before,
                    }
                )
            sampler.running = False
            sampler.join()
        growth = (sampler.peak - base_rss) / MIB
        ratios = [r["api"] / r["raw"] for r in rounds]
        median_ratio = statistics.median(ratios)
        # The figures shown are those of the round closest to the median (the lower one on a tie).
        middle = min(range(len(rounds)), key=lambda i: (abs(ratios[i] - median_ratio), ratios[i]))
        median = rounds[middle]
        arrived = asyncio.run(concurrent(url, token, case, args.concurrent))

        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"\n## vault deposit through the HTTP API (bench/deposit.py) — {stamp}\n",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
            f"Python {platform.python_version()}; embedded vault (SQLite, local objects) on "
            f"loopback; `bench/deposit.py --size-mib {args.size_mib} --runs {args.runs}`. "
            "Each round runs the raw pipeline, then one upload; the round closest to the median "
            "ratio is shown.\n",
            "| figure | value |\n| --- | ---: |",
            f"| raw pipeline (read + SHA-256 + ChaCha20-Poly1305, 1 thread) | "
            f"{median['raw']:,.0f} MB/s |",
            f"| disk: copy + fsync of the same file (not in the raw figure) | {disk:,.0f} MB/s |",
            f"| deposit through the API ({args.size_mib} MiB) | {median['api']:,.0f} MB/s |",
            f"| ratio API / raw (target >= 0.5), median of {args.runs} | {median_ratio:.2f} |",
            f"| ratio per round | {', '.join(f'{r:.2f}' for r in ratios)} |",
            f"| wall time of the upload | {median['elapsed']:.2f} s |",
            f"| server CPU time (all threads) / client CPU time | "
            f"{median['server_cpu']:.2f} s / {median['client_cpu']:.2f} s |",
            f"| server RSS before upload | {base_rss / MIB:,.0f} MiB |",
            f"| server peak RSS growth over all rounds (target < 100 MiB) | {growth:,.1f} MiB |",
            f"| {args.concurrent} concurrent 100 KB deposits arrived | "
            f"{arrived} of {args.concurrent} |",
        ]
        report = "\n".join(lines) + "\n"
        print(report)
        if args.append_results:
            with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as out:
                out.write(report)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
