"""Benchmark deposits per second through one and through two `tvault serve` processes.

One vault on PostgreSQL (a fresh schema) with its object store in a local directory; the
servers run no embedded worker and no search helper, so what is measured is the API's deposit
path: request, policy, SHA-256 and age encryption of the stream, object write and fsync, and
the transaction (item row, wrapped key, ledger entry, extraction job). `--clients` threads each
send 100 KB deposits (random bytes, so nothing compresses) to the servers in turn, for
`--deposits` deposits per phase; the ratio of the two rates is taken in the same run.

The CPU seconds each process group spent per deposit are reported with each phase (servers,
this client, and PostgreSQL's backends: those include other work on a shared machine), and
with `--profile` the one-server phase runs under cProfile and the functions taking the most
time are printed.

    .venv/bin/python bench/multi_api.py [--deposits 200] [--clients 8] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import pstats
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from keys import KdfParams
from vault.accounts import add_user
from vault.headers import to_headers
from vault.provision import create_vault
from vault.settings import load_settings

PG_URL = os.environ.get("TVAULT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
PASSPHRASE = "bench passphrase, not a real one"  # noqa: S105 (a throw-away vault)
SIZE = 100 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One `tvault serve` process on the bench vault."""

    def __init__(self, env: dict[str, str], log: Path, profile: Path | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run = [sys.executable]
        if profile is not None:
            run += ["-m", "cProfile", "-o", str(profile)]
        run += ["-m", "vault.cli", "serve", "--port", str(self.port)]
        with log.open("ab") as out:
            self.process = subprocess.Popen(run, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start: " + log.read_text(errors="replace"))
            time.sleep(0.2)
        self.ps = psutil.Process(self.process.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _postgres_cpu() -> float:
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


def _deposits(servers: list[Server], token: str, case: str, count: int, clients: int) -> float:
    """Send `count` deposits of `SIZE` bytes over `clients` threads; return the seconds taken."""
    bodies = [secrets.token_bytes(SIZE) for _ in range(16)]
    meta = to_headers({"kind": "testimony", "title": "bench", "consent": "therapy"})
    headers = {"Authorization": f"Bearer {token}", **meta}
    counter = iter(range(count))
    lock = threading.Lock()
    failures: list[str] = []

    def client(n: int) -> None:
        sessions = [httpx.Client(base_url=s.url, headers=headers, timeout=120) for s in servers]
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                target = sessions[(i + n) % len(sessions)]
                made = target.post(f"/v1/cases/{case}/items", content=bodies[i % len(bodies)])
                if made.status_code != 201:
                    failures.append(f"{made.status_code} {made.text[:200]}")
        finally:
            for session in sessions:
                session.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} deposits failed, first: {failures[0]}")
    return elapsed


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    schema = f"bench_multi_api_{os.getpid()}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _phase(
    label: str, servers: list[Server], token: str, case: str, args: argparse.Namespace
) -> tuple[float, str]:
    me = psutil.Process()
    before = ([s.cpu() for s in servers], sum(me.cpu_times()[:2]), _postgres_cpu())
    elapsed = _deposits(servers, token, case, args.deposits, args.clients)
    after = ([s.cpu() for s in servers], sum(me.cpu_times()[:2]), _postgres_cpu())
    rate = args.deposits / elapsed
    per = 1000 / args.deposits
    server_ms = sum(a - b for a, b in zip(after[0], before[0], strict=True)) * per
    row = (
        f"| {label} | {args.deposits} | {elapsed:.1f} | {rate:.1f} | {server_ms:.1f} "
        f"| {(after[1] - before[1]) * per:.1f} | {(after[2] - before[2]) * per:.1f} |"
    )
    return rate, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} cpus, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp, _schema() as url:
        home = Path(tmp) / "vault"
        settings = load_settings(home, database_url=url)
        kdf = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
        vault = create_vault(settings, PASSPHRASE, "admin", kdf=kdf)
        with vault.sessions.begin() as session:
            add_user(session, "tina", "therapist", vault.clock())
        vault.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        env.update(
            {
                "TVAULT_HOME": str(home),
                "TVAULT_PASSPHRASE": PASSPHRASE,
                "TVAULT_DATABASE_URL": url,
                "TVAULT_EMBEDDED_WORKER": "false",
                "TVAULT_SEARCH_HELPER": "false",
            }
        )
        token = subprocess.run(
            [sys.executable, "-m", "vault.cli", "token", "tina"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        profile = Path(tmp) / "server.prof" if args.profile else None
        log = Path(tmp) / "servers.log"
        first = Server(env, log, profile)
        servers = [first]
        try:
            made = httpx.post(
                f"{first.url}/v1/cases",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            )
            case = made.json()["id"]
            _deposits(servers, token, case, 16, args.clients)  # warm up
            one, row_one = _phase("1 API process", servers, token, case, args)
            if profile is not None:  # the profile covers the one-server phase only
                first.stop()
                first = Server(env, log)
                servers = [first]
            servers.append(Server(env, log))
            _deposits(servers, token, case, 16, args.clients)  # warm up the second
            two, row_two = _phase("2 API processes", servers, token, case, args)
        finally:
            for server in servers:
                server.stop()
        print(
            "| servers | deposits | seconds | deposits/s | server CPU ms/deposit "
            "| client CPU ms/deposit | PostgreSQL CPU ms/deposit |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print(row_one)
        print(row_two)
        print(f"ratio two/one: {two / one:.2f}")
        if profile is not None and profile.exists():
            stats = pstats.Stats(str(profile))
            stats.sort_stats("tottime").print_stats(25)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
