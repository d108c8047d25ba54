"""Benchmark: downloading a stored 1 GiB item, with curl and `tvault get`, against the raw pipeline.

Run from the repository root:

    .venv/bin/python bench/download.py [--size-mib 1024] [--runs 5] [--append-results]

In one run: (1) writes a SIZE file under /tmp, creates a vault (`tvault init`), starts `tvault
serve` on loopback and deposits the file once; (2) opens the vault in this process too (with the
passphrase) to get the item's key; (3) `--runs` rounds, each measuring, one after the other on
the same machine load: the raw pipeline over the stored object (read it from the object store,
ChaCha20-Poly1305 decrypt each age chunk, SHA-256 of the plaintext, one thread: what any
download of a sealed item pays), then `curl -o /dev/null` of `GET /v1/items/{id}/content`, then
`tvault get ITEM -o FILE --force` into the work directory (a separate process: its start-up,
the checked SHA-256 and the fsync of FILE are included, as a person meets them). Each round's
figures are ratios to its own raw run (the machine is shared and noisy); the median ratio of
each client over the rounds is reported with every round's. For context, the disk's copy +
fsync speed is measured once (the raw figure writes nothing). Everything under /tmp is deleted
afterwards.
"""

from __future__ import annotations

import argparse
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
import time
from pathlib import Path

import httpx

# Run as a script, this directory comes first on sys.path, where bench/ingest.py would shadow
# the `ingest` package that `vault` imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import keys  # noqa: E402
from vault.compose import open_vault  # noqa: E402
from vault.db import Item  # noqa: E402
from vault.headers import to_headers  # noqa: E402
from vault.indexing import item_identity  # noqa: E402
from vault.settings import load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
TVAULT = [sys.executable, "-m", "vault.cli"]
PASSPHRASE = "bench passphrase"  # noqa: S105 (a throwaway vault)


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MIB):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def disk_write(path: Path, target: Path) -> float:
    """Return MB/s of copying `path` to `target` in 1 MiB writes, then fsync (the disk's part)."""
    start = time.perf_counter()
    with path.open("rb") as source, target.open("wb") as out:
        while chunk := source.read(MIB):
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


def chunks(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            yield chunk


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    size = args.size_mib * MIB
    load_before = os.getloadavg()

    work = Path(tempfile.mkdtemp(prefix="tvault-bench-", dir="/tmp"))
    server = None
    try:
        source = work / "input.bin"
        expected = make_file(source, size)
        disk = disk_write(source, work / "copy.bin")

        home = work / "vault"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        env.update(
            TVAULT_HOME=str(home),
            TVAULT_PASSPHRASE=PASSPHRASE,
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
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            case = client.post("/v1/cases", json={"name": "bench"}).json()["id"]
            response = client.post(
                f"/v1/cases/{case}/items",
                content=chunks(source),
                headers={
                    "Content-Length": str(size),
                    **to_headers({"kind": "media", "title": "bench", "consent": "therapy"}),
                },
            )
            response.raise_for_status()
            item_id = response.json()["id"]
        source.unlink()  # the page cache should hold the stored object, not the input

        vault = open_vault(load_settings(home), PASSPHRASE)
        with vault.sessions() as session:
            identity = item_identity(vault, session, item_id)
            item = session.get(Item, item_id)
            assert identity is not None and item is not None
            object_name = item.object_name

        def raw_pipeline() -> float:
            digest = hashlib.sha256()
            start = time.perf_counter()
            with vault.store.open(object_name) as sealed:
                for chunk in keys.open_stream(sealed, identity):
                    digest.update(chunk)
            elapsed = time.perf_counter() - start
            if digest.hexdigest() != expected:
                raise SystemExit("the stored object does not give back the deposited bytes")
            return size / 1e6 / elapsed

        curl = [
            "curl", "-sSf", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
            f"{url}/v1/items/{item_id}/content",
        ]  # fmt: skip
        target = work / "got.bin"
        get = [*TVAULT, "get", item_id, "-o", str(target), "--force", "--url", url]
        client_env = {**env, "TVAULT_TOKEN": token}
        rounds: list[dict[str, float]] = []
        raw_pipeline()  # warm the page cache with the stored object
        for _ in range(args.runs):
            raw = raw_pipeline()
            curl_s = timed(curl)
            get_s = timed(get, client_env)
            target.unlink()
            # The same process start-up and imports without the download (issue 20 point 11
            # measures start-up on its own): what is left is the download itself.
            start_s = timed([*TVAULT, "get", "--help"], client_env)
            rounds.append(
                {
                    "raw": raw,
                    "curl": size / 1e6 / curl_s,
                    "get": size / 1e6 / get_s,
                    "get_net": size / 1e6 / max(get_s - start_s, 1e-3),
                    "start_s": start_s,
                }
            )
        vault.close()
        load_after = os.getloadavg()

        def median(name: str) -> tuple[float, list[float]]:
            ratios = [r[name] / r["raw"] for r in rounds]
            return statistics.median(ratios), ratios

        curl_median, curl_ratios = median("curl")
        get_median, get_ratios = median("get")
        net_median, net_ratios = median("get_net")
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"\n## download of a stored item (bench/download.py) — {stamp}\n",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
            f"Python {platform.python_version()}; load average {load_before[0]:.2f} before, "
            f"{load_after[0]:.2f} after; embedded vault (SQLite, local objects) on loopback; "
            f"`bench/download.py --size-mib {args.size_mib} --runs {args.runs}`. Each round runs "
            "the raw pipeline, then curl, then `tvault get`; ratios are to the round's raw "
            "figure; MB/s are the medians over rounds.\n",
            "| figure | value |\n| --- | ---: |",
            "| raw pipeline (read stored object + ChaCha20-Poly1305 decrypt + SHA-256, 1 thread) "
            f"| {statistics.median(r['raw'] for r in rounds):,.0f} MB/s |",
            f"| disk: copy + fsync of 1 GiB (in `tvault get`, not in raw) | {disk:,.0f} MB/s |",
            f"| curl -o /dev/null | {statistics.median(r['curl'] for r in rounds):,.0f} MB/s |",
            f"| ratio curl / raw (target >= 0.5), median of {args.runs} | {curl_median:.2f} |",
            f"| ratio per round | {', '.join(f'{r:.2f}' for r in curl_ratios)} |",
            "| `tvault get -o FILE` (process start, SHA-256 check, fsync) | "
            f"{statistics.median(r['get'] for r in rounds):,.0f} MB/s |",
            f"| ratio tvault get / raw (target >= 0.5), median of {args.runs} | {get_median:.2f} |",
            f"| ratio per round | {', '.join(f'{r:.2f}' for r in get_ratios)} |",
            "| `tvault get --help` (start-up alone), median | "
            f"{statistics.median(r['start_s'] for r in rounds):.2f} s |",
            "| `tvault get` without its start-up: ratio to raw, median | "
            f"{net_median:.2f} ({', '.join(f'{r:.2f}' for r in net_ratios)}) |",
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
