"""The load mix (issue 23 point 5): 20 clients for 60 s against one `tvault serve`, 80% search,
15% deposit, 5% download of a 1 MB item; requests/s, p50/p99 per kind, server RSS, errors.

Run: `.venv/bin/python bench/load.py [--items 5000] [--clients 20] [--seconds 60] [--append]`.
The vault (SQLite, local store, tantivy, embedded worker: every deposit is extracted and indexed
by the server while it serves) holds `--items` generated items of ~2 KB as extraction leaves
them (bench/search.py's corpus), a case of therapist tina with one 1 MB original, and lawyer
lena granted on 10 of the 200 cases. The clients run in this process (asyncio, one keep-alive
connection each) on the same machine as the server: client and server share its cores.
- search: lena, POST /v1/search, one or two words of the corpus, page of 20 with snippets;
- deposit: tina, a raw POST of 20 KB of text (extracted and indexed afterwards by the server);
- download: tina, GET of the 1 MB original, read whole.
Target: search p99 < 1 s, no error. `--append` adds a section to bench/RESULTS.md.

Where the two cores go: the CPU seconds of the server, of each kind of helper process it
started, of this process (the 20 clients) and of everything else on the machine (from
/proc/stat), and the server's CPU per request. `--mix search=1` runs one kind alone, which
gives the server's CPU cost of that kind by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # run from a checkout


def _load(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vsearch = _load("search")  # bench/search.py: its corpus builder

import httpx  # noqa: E402
import psutil  # noqa: E402

from keys import KdfParams  # noqa: E402
from vault.accounts import find_user, principal_of  # noqa: E402
from vault.cases import create_case, grant  # noqa: E402
from vault.indexing import reindex  # noqa: E402
from vault.parts import Vault  # noqa: E402
from vault.provision import create_vault  # noqa: E402
from vault.settings import load_settings  # noqa: E402

PASSPHRASE = "bench passphrase, not a secret"  # noqa: S105 (a throwaway vault)
RESULTS = ROOT / "bench" / "RESULTS.md"
MIX = (("search", 0.80), ("deposit", 0.15), ("download", 0.05))
KINDS = tuple(kind for kind, _ in MIX)
WARM_UP_SECONDS = 5.0
MIB = 1024 * 1024


def _principal(vault: Vault, name: str):  # type: ignore[no-untyped-def]
    with vault.sessions() as session:
        return principal_of(session, find_user(session, name))


def _prepare(home: Path, items: int) -> str:
    """Build the vault; return tina's case id."""
    kdf = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
    vault = create_vault(load_settings(home), PASSPHRASE, "admin", kdf=kdf)
    try:
        vsearch.build(vault, items, 7)  # type: ignore[attr-defined]
        assert reindex(vault, workers=0) == items
        case = create_case(vault, _principal(vault, "tina"), "Load").id
        grant(vault, _principal(vault, "admin"), case, "lena", "lawyer")
    finally:
        vault.close()
    return case


def _backlog(home: Path) -> str:
    """Return the vault's jobs that are not done, by kind and state ("none" if all are)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(load_settings(home).effective_database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT kind, state, count(*) FROM jobs WHERE state != 'done'"
                    " GROUP BY kind, state ORDER BY kind, state"
                )
            ).all()
    finally:
        engine.dispose()
    return ", ".join(f"{kind} {state} {n}" for kind, state, n in rows) or "none"


def _serve(home: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = (home.parent / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,  # `-m` puts the working directory first on the path: this checkout's code
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


class _Rss(threading.Thread):
    """Samples the server's RSS (with its helper processes) until stopped and keeps the peak;
    also the CPU seconds of the server and of each kind of helper process it started."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stopping = threading.Event()
        self._start: dict[int, tuple[str, float]] = {}
        self._seen: dict[int, tuple[str, float]] = {}

    def _kind(self, process: psutil.Process) -> str:
        if process.pid == self.process.pid:
            return "server"
        line = " ".join(process.cmdline())
        return "parser" if "tika" in line else "search helper" if "spawn" in line else "other"

    def _sample(self) -> int:
        total = 0
        for process in [self.process, *self.process.children(True)]:
            try:
                total += process.memory_info().rss
                times = process.cpu_times()
                self._seen[process.pid] = (self._kind(process), times.user + times.system)
            except psutil.Error:
                continue
        return total

    def start_cpu(self) -> None:
        self._sample()
        self._start = dict(self._seen)

    def cpu_spent(self) -> dict[str, float]:
        self._sample()
        spent: dict[str, float] = {}
        for pid, (kind, seconds) in self._seen.items():
            before = self._start.get(pid, (kind, 0.0))[1]
            spent[kind] = spent.get(kind, 0.0) + seconds - before
        return spent

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            self.peak = max(self.peak, self._sample())


async def _client(
    n: int,
    url: str,
    tokens: dict[str, str],
    case: str,
    big: str,
    until: float,
    measure_from: float,
    samples: dict[str, list[float]],
    errors: dict[str, int],
    words: list[str],
    mix: tuple[tuple[str, float], ...],
) -> None:
    rng = random.Random(n)
    kinds, weights = zip(*mix, strict=True)
    deposit_headers = {
        "Authorization": f"Bearer {tokens['tina']}",
        "Tvault-Kind": "document",
        "Tvault-Title": "load",
        "Tvault-Consent": "therapy,legal",
    }
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while (now := time.monotonic()) < until:
            kind = rng.choices(kinds, weights)[0]
            began = time.perf_counter()
            try:
                if kind == "search":
                    query = " ".join(rng.choice(words) for _ in range(rng.choice((1, 2))))
                    response = await client.post(
                        "/v1/search",
                        json={"q": query, "page_size": 20},
                        headers={"Authorization": f"Bearer {tokens['lena']}"},
                    )
                elif kind == "deposit":
                    body = " ".join(rng.choice(words) for _ in range(2500)).encode()[: 20 * 1024]
                    response = await client.post(
                        f"/v1/cases/{case}/items", content=body, headers=deposit_headers
                    )
                else:
                    response = await client.get(
                        f"/v1/items/{big}/content",
                        headers={"Authorization": f"Bearer {tokens['tina']}"},
                    )
                    if len(response.content) != MIB:
                        raise ValueError("short download")
                ok = response.status_code < 300
            except (httpx.HTTPError, ValueError):
                ok = False
            elapsed = time.perf_counter() - began
            if now < measure_from:
                continue
            if ok:
                samples[kind].append(elapsed)
            else:
                errors[kind] += 1


async def _mix(
    url: str,
    tokens: dict[str, str],
    case: str,
    big: str,
    clients: int,
    seconds: float,
    mix: tuple[tuple[str, float], ...],
) -> tuple[dict[str, list[float]], dict[str, int]]:
    samples: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
    errors: dict[str, int] = {kind: 0 for kind, _ in MIX}
    words = vsearch.ES_WORDS[40:] + vsearch.EN_WORDS[40:]  # type: ignore[attr-defined]
    start = time.monotonic()
    measure_from = start + WARM_UP_SECONDS
    until = measure_from + seconds
    await asyncio.gather(
        *(
            _client(n, url, tokens, case, big, until, measure_from, samples, errors, words, mix)
            for n in range(clients)
        )
    )
    return samples, errors


def _parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """Return the mix `search=80,deposit=15` names (weights; kinds left out are not sent)."""
    mix = []
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in KINDS or not weight:
            raise SystemExit(f"--mix: {part!r} is not KIND=WEIGHT with KIND in {KINDS}")
        mix.append((kind, float(weight)))
    return tuple(mix)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float:
    """Core-seconds the whole machine has spent busy since boot (all processes)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _p(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=8781)
    parser.add_argument(
        "--mix",
        type=_parse_mix,
        default=MIX,
        help="kinds and weights, e.g. search=1 (searches alone); default search=80,...",
    )
    parser.add_argument("--label", default="", help="a word for the RESULTS.md section")
    parser.add_argument(
        "--standalone-worker",
        action="store_true",
        help="extract and index in one `tvault worker` process beside the server"
        " (TVAULT_EMBEDDED_WORKER=false, the docker-compose shape) instead of the server's thread",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TVAULT_NAME=VALUE",
        help="a setting for the server (repeatable), e.g. TVAULT_SEARCH_CONCURRENCY=64",
    )
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--keep", type=Path, help="build the vault here once and reuse it (delete it after)"
    )
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="tvault-bench-load-", dir="/tmp"))
    home = workdir / "vault"
    fresh = not home.exists()
    try:
        case = _prepare(home, args.items) if fresh else (workdir / "case").read_text()
        (workdir / "case").write_text(case)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        env.update(
            {"TVAULT_HOME": str(home), "TVAULT_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(ROOT)}
        )
        env.update(dict(item.split("=", 1) for item in args.set))
        tokens = {
            name: subprocess.run(
                [sys.executable, "-m", "vault.cli", "token", name],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            for name in ("tina", "lena")
        }
        url = f"http://127.0.0.1:{args.port}"
        worker: subprocess.Popen[bytes] | None = None
        if args.standalone_worker:
            env["TVAULT_EMBEDDED_WORKER"] = "false"
            worker = subprocess.Popen(
                [sys.executable, "-m", "vault.cli", "worker"],
                env=env,
                cwd=ROOT,
                stdout=(workdir / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        process = _serve(home, env, args.port)
        try:
            made = httpx.post(
                f"{url}/v1/cases/{case}/items",
                content=os.urandom(MIB),
                headers={
                    "Authorization": f"Bearer {tokens['tina']}",
                    "Tvault-Kind": "media",
                    "Tvault-Title": "big",
                    "Tvault-Consent": "therapy",
                },
                timeout=120,
            )
            made.raise_for_status()
            big = made.json()["id"]
            rss = _Rss(process.pid)
            rss.start_cpu()
            rss.start()
            worker_cpu = _Rss(worker.pid) if worker is not None else None
            if worker_cpu is not None:
                worker_cpu.start_cpu()
            load_before = os.getloadavg()
            own_before, busy_before = _own_cpu(), _machine_busy()
            samples, errors = asyncio.run(
                _mix(url, tokens, case, big, args.clients, args.seconds, args.mix)
            )
            own, busy = _own_cpu() - own_before, _machine_busy() - busy_before
            load_after = os.getloadavg()
            rss.stopping.set()
            rss.join()
            cpu = rss.cpu_spent()
            if worker_cpu is not None:
                for kind, seconds in worker_cpu.cpu_spent().items():
                    name = "worker" if kind == "server" else f"worker's {kind}"
                    cpu[name] = cpu.get(name, 0.0) + seconds
            # How far extraction and indexing were behind the deposits when the load stopped:
            # a lagging worker would leave the searches fewer long texts to show.
            backlog = _backlog(home)
        finally:
            process.terminate()
            process.wait(timeout=60)
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    total = sum(len(s) for s in samples.values())
    # Requests over the whole run (warm-up included, as the CPU figures): the measured ones
    # scaled by the run's length over the measured part.
    served = total * (args.seconds + WARM_UP_SECONDS) / args.seconds
    served_cpu = sum(cpu.values())
    others = busy - served_cpu - own
    rows = []
    for kind, _ in args.mix:
        ordered = sorted(samples[kind])
        rows.append(
            f"| {kind} | {len(ordered) / args.seconds:.1f} | {_p(ordered, 0.5):.0f} | "
            f"{_p(ordered, 0.99):.0f} | {errors[kind]} |"
        )
    search = sorted(samples["search"])
    shape = "one standalone worker process" if args.standalone_worker else "the server's thread"
    lines = [
        "",
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: bench/load.py {args.label}".rstrip(),
        "",
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" `bench/load.py {' '.join(sys.argv[1:])}`; {args.clients} clients in one process on"
        f" the same machine as the server, {args.seconds:.0f} s after {WARM_UP_SECONDS:.0f} s of"
        f" warm-up; {args.items:,} items. Load average (1 min) {load_before[0]:.1f} before,"
        f" {load_after[0]:.1f} after (the machine is shared).",
        "",
        "| kind | requests/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        f"| all | {total / args.seconds:.1f} | | | {sum(errors.values())} |",
        "",
        f"Mix: {', '.join(f'{kind} {weight:g}' for kind, weight in args.mix)}.",
        "",
        f"Server RSS peak (with its helper processes): {rss.peak / MIB:.0f} MiB."
        f" Search p99 {_p(search, 0.99):.0f} ms (target < 1,000);"
        f" p50 {statistics.median(search) * 1000 if search else 0:.0f} ms."
        " CPU seconds over the run (warm-up included): "
        + ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in sorted(cpu.items()))
        + f" of {(args.seconds + WARM_UP_SECONDS) * (os.cpu_count() or 1):.0f} core-seconds;"
        f" the clients (this process) {own:.1f}; the machine was busy {busy:.1f}, of which"
        f" {others:.1f} by other processes. Per request: server and its helpers"
        f" {served_cpu / served * 1000 if served else 0:.1f} ms CPU (the server's own process"
        f" {cpu.get('server', 0.0) / served * 1000 if served else 0:.1f} ms), clients"
        f" {own / served * 1000 if served else 0:.1f} ms."
        f" Extraction and indexing: {shape};"
        f" jobs not yet done when the load stopped: {backlog}.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(report)


if __name__ == "__main__":
    main()
