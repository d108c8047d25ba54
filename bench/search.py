"""Benchmark search in the vault: indexing rate from sealed texts, and query latency over HTTP.

Builds a vault under /tmp with N generated items (~2 KB each, 60% Spanish / 40% English, the
generator of bench/search_index.py) in 200 cases. Each item is written as the extraction stage
leaves it: its own age identity wrapped by the keyring, title sealed in its metadata, extracted
text sealed to its identity in the object store (fsynced, through `LocalObjectStore`) with its
`item_texts` row. The originals themselves are not written: search never reads them.

Measured:
- indexing: `vault.indexing.reindex` over every item (read rows, unwrap each item key, open
  each sealed text, analyse, digest, tantivy, commit), and the worker's per-item path
  (`index_item`: one engine commit and one custody entry per item) on a sample;
- queries: `tvault serve` in a subprocess; a lawyer granted on 10 cases sends POST /v1/search
  over one keep-alive HTTP connection; each request runs the scope, the engine query with
  facets, the check of each hit of the page, the decryption of their texts, the snippets and
  the custody entry. Wall time per request at the client, p50/p99 per query kind.

Usage: .venv/bin/python bench/search.py [--items 100000] [--queries 200] [--record]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is named like the `search` package: keep its directory off the path, so that
# `import search` always finds the package, and load the shared corpus generator by file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))  # run from a checkout
_spec = importlib.util.spec_from_file_location("search_index", ROOT / "bench" / "search_index.py")
assert _spec is not None and _spec.loader is not None
search_index = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_index)
EN_WORDS, ES_WORDS = search_index.EN_WORDS, search_index.ES_WORDS
_names, _text = search_index._names, search_index._text

import httpx  # noqa: E402
import psutil  # noqa: E402

import keys  # noqa: E402
from keys import KdfParams  # noqa: E402
from vault import jobs  # noqa: E402
from vault.accounts import add_user  # noqa: E402
from vault.compose import open_vault  # noqa: E402
from vault.db import Case, CaseGrant, Item, ItemKey  # noqa: E402
from vault.db.jobs_tables import ItemText  # noqa: E402
from vault.indexing import IndexStage, index_item, reindex  # noqa: E402
from vault.parts import METADATA_IDENTITY, Vault  # noqa: E402
from vault.provision import create_vault  # noqa: E402
from vault.sealing import seal_json  # noqa: E402
from vault.settings import load_settings  # noqa: E402
from vault.worker import Worker  # noqa: E402

PASSPHRASE = "bench passphrase, not a secret"  # noqa: S105 (a throwaway vault)
CASES = 200
SCOPE_CASES = 10
WARM_UP_SECONDS = 5.0
BATCH = 1000


def _seal(data: bytes, recipient: str) -> bytes:
    out = io.BytesIO()
    keys.seal(io.BytesIO(data), out, [recipient])
    return out.getvalue()


def build(vault: Vault, count: int, seed: int) -> list[str]:
    """Write `count` items as extraction leaves them; return the case ids."""
    rng = random.Random(seed)
    names = _names(rng, 20000)
    metadata = keys.recipient_of(vault.keyring.secret(METADATA_IDENTITY).decode("ascii"))
    now = vault.clock()
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", now)
        add_user(session, "lena", "lawyer", now)
        cases = [f"case{n:03d}" for n in range(CASES)]
        for case_id in cases:
            sealed = seal_json({"name": case_id}, metadata)
            session.add(Case(id=case_id, sealed_name=sealed, created_by="tina", created_at=now))
    start = datetime(2015, 1, 1, tzinfo=UTC)
    written = 0
    while written < count:
        rows: list[object] = []
        for n in range(written, min(count, written + BATCH)):
            spanish = rng.random() < 0.6
            text = _text(rng, ES_WORDS if spanish else EN_WORDS, names, 2000)
            identity, recipient = keys.generate_identity()
            item_id = f"i{n:07d}"
            text_name = f"texts/{item_id}-extract-1"
            with vault.store.writer(text_name) as writer:
                writer.write(_seal(text.encode("utf-8"), recipient))
                writer.commit()
            created = start + timedelta(minutes=rng.randrange(10 * 365 * 24 * 60))
            title = f"Testimonio {n}" if spanish else f"Testimony {n}"
            rows.append(
                Item(
                    id=item_id,
                    case_id=rng.choice(cases),
                    kind=rng.choice(("testimony", "document", "media", "medical_report")),
                    language="es" if spanish else "en",
                    tags=sorted(
                        rng.sample(("torture", "arbitrary_detention", "sexual_violence"), 2)
                    ),
                    consent=sorted(
                        rng.sample(("legal", "therapy", "archive", "advocacy_named"), 2)
                    ),
                    size=len(text),
                    sha256="0" * 64,
                    object_name=f"items/{item_id}",
                    depositor="tina",
                    created_at=created,
                    sealed_meta=seal_json({"title": title}, recipient),
                )
            )
            rows.append(ItemKey(item_id=item_id, wrapped=vault.keyring.wrap(identity)))
            rows.append(
                ItemText(
                    item_id=item_id,
                    object_name=text_name,
                    mime_type="text/plain",
                    language="es" if spanish else "en",
                    chars=len(text),
                    sealed_meta=seal_json({}, recipient),
                    tool="bench",
                    extracted_at=now,
                )
            )
        with vault.sessions.begin() as session:
            session.add_all(rows[0::3])
            session.flush()
            session.add_all(rows[1::3] + rows[2::3])
        written = min(count, written + BATCH)
        print(f"\rwritten {written:,}/{count:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with vault.sessions.begin() as session:
        for case_id in rng.sample(cases, SCOPE_CASES):
            session.add(
                CaseGrant(
                    case_id=case_id,
                    user_name="lena",
                    role="lawyer",
                    granted_by="admin",
                    granted_at=now,
                )
            )
    return cases


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the reindex helpers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _serve(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = 8765
    process = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stage-sample", type=int, default=300)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--keep", type=Path, help="build the corpus here once and reuse it (delete it after)"
    )
    parser.add_argument("--page-size", type=int, default=20, help="the API's default is 20")
    parser.add_argument(
        "--no-search-helper",
        action="store_true",
        help="serve with TVAULT_SEARCH_HELPER=false (every hit shown by the request's thread)",
    )
    parser.add_argument(
        "--queries-only",
        action="store_true",
        help="with --keep and an index already built: measure the queries only",
    )
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="tvault-bench-vsearch-", dir="/tmp"))
    home = workdir / "vault"
    try:
        settings = load_settings(home)
        built = 0.0
        if (home / "tvault.toml").exists():
            vault = open_vault(settings, PASSPHRASE)
        else:
            kdf = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
            vault = create_vault(settings, PASSPHRASE, "admin", kdf=kdf)
            began = time.perf_counter()
            build(vault, args.items, 7)
            built = time.perf_counter() - began

        rates = {}
        for workers in () if args.queries_only else (0, 1):
            began, cpu = time.perf_counter(), _cpu()
            indexed = reindex(vault, workers=workers)
            rates[workers] = (
                args.items / (time.perf_counter() - began),
                args.items / (_cpu() - cpu),
            )
            assert indexed == args.items, indexed

        # On a reused corpus the sample's jobs were done in the run that built it: enqueueing
        # them again gives the worker nothing to do, so the stage is measured on fresh ones only.
        fresh = bool(built) and bool(rates)
        stage, single = _stage(vault, args.items, args.stage_sample) if fresh else (0.0, 0.0)
        size = sum(f.stat().st_size for f in (home / "index").rglob("*") if f.is_file())
        vault.close()

        env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        env.update(
            {
                "TVAULT_HOME": str(home),
                "TVAULT_PASSPHRASE": PASSPHRASE,
                "TVAULT_EMBEDDED_WORKER": "false",
                "TVAULT_SEARCH_HELPER": "false" if args.no_search_helper else "true",
                "PYTHONPATH": str(ROOT),
            }
        )
        token = subprocess.run(
            [sys.executable, "-m", "vault.cli", "token", "lena"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        process, url = _serve(home, env)
        try:
            rows, overall, totals = _queries(url, token, args.queries, process.pid, args.page_size)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    lines = [
        "",
        f"## search through the vault (issue 6 point 7) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average"
        f" {os.getloadavg()[0]:.2f} at the end, Python {platform.python_version()};"
        f" `bench/search.py {' '.join(sys.argv[1:])}`."
        " Embedded vault: SQLite, local object store, tantivy.",
        f"Corpus: {args.items:,} generated items of ~2 KB (60% es / 40% en) in {CASES} cases,"
        " each with its own age identity (wrapped in the DB), sealed title and sealed extracted"
        " text in the object store, written directly as extraction leaves them"
        + (f" ({built:.0f} s; not measured)." if built else " (in an earlier run; not measured).")
        + f" Index on disk {size / 2**20:.0f} MiB.",
        *(_indexing_lines(rates, args.stage_sample, stage, single) if rates else []),
        f"- queries: `tvault serve` (search helper process"
        f" {'off' if args.no_search_helper else 'on'}), POST /v1/search over one keep-alive"
        " connection, a lawyer"
        f" granted on {SCOPE_CASES} cases (scope: those cases, consent `legal`), page of"
        f" {args.page_size} with facets, per-hit policy check, text decryption and snippets,"
        " custody entry per search;"
        " client wall time in ms (targets p50 <= 15, p99 <= 60):",
        "",
        "| query kind | p50 | p99 | server CPU per request (with helper) | mean hits in scope |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| {k} | {a:.1f} | {b:.1f} | {c:.1f} | {totals[k]:,.0f} |" for k, a, b, c in rows),
        f"| all kinds | {overall[0]:.1f} | {overall[1]:.1f} | | |",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
            out.write(report)


def _indexing_lines(
    rates: dict[int, tuple[float, float]], sample: int, stage: float, single: float
) -> list[str]:
    return [
        "- `tvault reindex` path (`vault.indexing.reindex`: read rows, unwrap each key, open"
        " each sealed text, analyse, digest, index, one commit), items/s by wall clock and by"
        " CPU time (items per CPU-second of the process and its helpers; target >= 2,000): "
        + "; ".join(
            f"{w} helper process{'es' if w != 1 else ''}: {wall:,.0f} wall, {cpu:,.0f} CPU"
            for w, (wall, cpu) in rates.items()
        )
        + ".",
        (
            f"- worker stage path (`IndexStage` through `vault.worker.Worker`: up to 50 due jobs"
            f" per engine commit, a custody entry and job completion per item), {sample} queued"
            f" jobs: {sample / stage:,.0f} items/s; one item per commit (`index_item`, 50 items):"
            f" {single:,.0f} items/s."
            if stage
            else "- worker stage path: not measured (corpus reused from an earlier run)."
        ),
    ]


def _stage(vault: Vault, items: int, count: int) -> tuple[float, float]:
    """Return (seconds for the worker to index `count` queued items, items/s one per commit)."""
    sample = [f"i{n:07d}" for n in random.Random(3).sample(range(items), count)]
    with vault.sessions.begin() as session:
        for item_id in sample:
            jobs.enqueue(session, item_id, jobs.INDEX, now=vault.clock())
    began = time.perf_counter()
    Worker(vault, stages={jobs.INDEX: IndexStage}).run_until_idle()
    stage = time.perf_counter() - began
    began = time.perf_counter()
    for item_id in sample[:50]:
        index_item(vault, item_id)
    return stage, 50 / (time.perf_counter() - began)


def _queries(
    url: str, token: str, count: int, pid: int, page_size: int
) -> tuple[list[tuple[str, float, float, float]], tuple[float, float], dict[str, float]]:
    rng = random.Random(11)
    names = _names(random.Random(7), 20000)
    words = ES_WORDS[40:] + EN_WORDS[40:]
    kinds: dict[str, Callable[[], str]] = {
        "word": lambda: rng.choice(words),
        "two words (AND)": lambda: f"{rng.choice(words)} {rng.choice(words)}",
        "phrase": lambda: '"golpes eléctricos"' if rng.random() < 0.5 else '"electric shocks"',
        "OR / NOT": lambda: f"{rng.choice(words)} OR {rng.choice(words)} -{rng.choice(words)}",
        "prefix": lambda: rng.choice(words)[:4] + "*",
        "fuzzy name": lambda: rng.choice(names)[:-1] + "x~1",
        "filtered": lambda: f"{rng.choice(words)} lang:es year:{rng.randint(2015, 2024)}",
        "empty (browse)": lambda: "",
    }
    rows = []
    every: list[float] = []
    totals: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        # Warm up (connection, caches, the vocabulary) for at least WARM_UP_SECONDS: the
        # server's search helper process becomes ready about a second after it starts, and
        # a long-running server is what is measured.
        warm = random.Random(12)  # its own generator: the measured queries stay the same
        began = time.monotonic()
        while time.monotonic() - began < WARM_UP_SECONDS:
            client.post("/v1/search", json={"q": warm.choice(words)})
        server = psutil.Process(pid)

        def server_cpu() -> float:
            # The server and its live helper processes (the search helper).
            return sum(sum(p.cpu_times()[:2]) for p in [server, *server.children(recursive=True)])

        for kind, make in kinds.items():
            samples: list[float] = []
            found = 0
            before = server_cpu()
            for _ in range(count):
                body = {"q": make(), "page_size": page_size}
                began = time.perf_counter()
                response = client.post("/v1/search", json=body)
                samples.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
                found += response.json()["total"]
            cpu_ms = (server_cpu() - before) * 1000 / count
            every += samples
            totals[kind] = found / count
            rows.append((kind, *_percentiles(samples), cpu_ms))
    return rows, _percentiles(every), totals


if __name__ == "__main__":
    main()
