"""Benchmark deposits per second through one and through two `tvault serve` processes.

One vault on PostgreSQL (a fresh schema) with its object store in a local directory; the
servers run no embedded worker and no search helper, so what is measured is the API's deposit
path: request, policy, SHA-256 and age encryption of the stream, object write and fsync, and
the transaction (item row, wrapped key, ledger entry, extraction job). `--clients` threads each
send 100 KB deposits (random bytes, so nothing compresses) to the servers in turn, for
`--deposits` deposits per phase; the ratio of the two rates is taken in the same run.

Both servers run throughout; `--rounds` rounds each measure one phase through the first server
only and one through both, in turn, and the ratio is the median of the rounds' ratios (on a
shared machine one phase alone says little). The CPU seconds each process group spent per
deposit are reported (servers, this client, and PostgreSQL's backends: those include other
work on a shared machine), and where a server's CPU goes: its event-loop thread (HTTP parsing,
receiving the body) against its other threads (hashing, sealing, writing, the transaction).

With `--spy` (needs `py-spy` on PATH or in the venv, and ptrace rights) the first round's
one-server phase is sampled by py-spy, and the functions the server's samples spend most time in
(by themselves, and including what they call, for the vault's own functions) are printed.

    .venv/bin/python bench/multi_api.py [--deposits 100] [--clients 8] [--rounds 3] [--spy]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
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

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run = [sys.executable, "-m", "vault.cli", "serve", "--port", str(self.port)]
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

    def loop_cpu(self) -> float:
        """CPU seconds of the main thread (uvicorn's event loop)."""
        for thread in self.ps.threads():
            if thread.id == self.ps.pid:
                return float(thread.user_time + thread.system_time)
        return 0.0

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


def _spy(server: Server, out: Path) -> subprocess.Popen[bytes]:
    tool = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [tool, "record", "--pid", str(server.process.pid), "--rate", "250"]
    command += ["--format", "raw", "--output", str(out), "--nonblocking", "--threads"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the phase starts
    return spy


def _report_spy(path: Path) -> None:
    """Print where the sampled server spent its time, from py-spy's collapsed stacks."""
    if not path.exists():
        print("py-spy wrote nothing (no ptrace rights?)")
        return
    leaves: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith("thread ")]
        if not frames or not count.isdigit():
            continue
        n = int(count)
        if any(
            f.startswith(("_worker (concurrent", "wait (threading", "select ("))
            for f in frames[-1:]
        ):
            continue  # idle threads waiting for work
        total += n
        leaves[frames[-1]] += n
        for frame in {f for f in frames if "vault/" in f or "keys/" in f or "policies/" in f}:
            ours[frame] += n
    print(f"py-spy: {total} busy samples")
    print("by themselves:")
    for frame, n in leaves.most_common(15):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("including what they call (vault, keys, policies):")
    for frame, n in ours.most_common(20):
        print(f"  {100 * n / total:5.1f}%  {frame}")


def _phase(
    servers: list[Server], token: str, case: str, args: argparse.Namespace
) -> tuple[float, list[float]]:
    """Return the deposit rate and the CPU ms per deposit of: servers, their event loops,
    this client, PostgreSQL."""
    me = psutil.Process()

    def sample() -> list[float]:
        return [
            sum(s.cpu() for s in servers),
            sum(s.loop_cpu() for s in servers),
            sum(me.cpu_times()[:2]),
            _postgres_cpu(),
        ]

    before = sample()
    elapsed = _deposits(servers, token, case, args.deposits, args.clients)
    after = sample()
    per = 1000 / args.deposits
    return args.deposits / elapsed, [(a - b) * per for a, b in zip(after, before, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spy", action="store_true")
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
        log = Path(tmp) / "servers.log"
        servers = [Server(env, log), Server(env, log)]
        rows: list[str] = []
        ratios: list[float] = []
        try:
            made = httpx.post(
                f"{servers[0].url}/v1/cases",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            )
            case = made.json()["id"]
            _deposits(servers, token, case, 16, args.clients)  # warm up both
            for n in range(args.rounds):
                spy = _spy(servers[0], Path(tmp) / "spy.txt") if args.spy and n == 0 else None
                one, cpu_one = _phase(servers[:1], token, case, args)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                two, cpu_two = _phase(servers, token, case, args)
                ratios.append(two / one)
                for label, rate, cpu in (("1", one, cpu_one), ("2", two, cpu_two)):
                    rows.append(
                        f"| {n + 1} | {label} | {rate:.1f} | "
                        + " | ".join(f"{c:.1f}" for c in cpu)
                        + " |"
                    )
        finally:
            for server in servers:
                server.stop()
        print(
            "| round | API processes | deposits/s | server CPU ms/deposit | of which event loop "
            "| client CPU ms/deposit | PostgreSQL CPU ms/deposit |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows))
        print(f"ratio two/one per round: {', '.join(f'{r:.2f}' for r in ratios)}")
        print(f"median ratio two/one: {statistics.median(ratios):.2f}")
        if args.spy:
            _report_spy(Path(tmp) / "spy.txt")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
