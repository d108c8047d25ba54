"""Ingest pipeline throughput: the `extract` stage through workers vs iscc-tika called directly.

Run: `.venv/bin/python -m bench.ingest [--docs 500] [--scale 1] [--append]`. Generates a mixed
corpus with `tests.corpus` (PDF of 1-5 pages, DOCX, ODT, HTML, UTF-8 and Latin-1 text; `--scale
K` makes every document K times as long) under a temporary directory, deleted afterwards. In the
same run it times:

- the baseline: iscc-tika's `extract_file_to_string` in a process of its own that imports
  nothing else, warm, one file after another on the same files, under the same no-spawn filter
  as the vault's parser processes (`ingest/adapters/_nospawn.py`); and, for information, stock
  iscc-tika, which forks its process about four times per document to look for `tesseract`;
- the ceiling for two: two such direct processes parsing at once, started together once warm;
- the pipeline: the files deposited into a fresh embedded vault (SQLite, local object store;
  deposit time reported apart), then a `vault.worker.Worker` (the same code as the server's
  thread and `tvault worker`) with 1, then on a fresh vault 2, threads and parser processes,
  from the moment warm-up jobs are done until every job is: decrypt to a private tmpfs file,
  parse in a parser process, detect the language, seal the text, commit link + ledger entry +
  next job + completion.

Reports documents/s and the ratios (pipeline / direct; 2 workers / 1 worker), the CPU time a
document costs in the worker process and in the parser processes, and the speed-up two workers
would reach at their CPU cost per document if both cores were fully busy. `--append` adds a
section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ingest import Limits
from keys import KdfParams
from tests import corpus
from vault import compose, extraction, jobs
from vault.accounts import add_user, find_user, principal_of
from vault.cases import create_case
from vault.deposit import Deposit
from vault.parts import Vault
from vault.provision import create_vault
from vault.settings import load_settings
from vault.worker import Worker, worker_threads

FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
WARM_UP = 4
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def make_corpus(directory: Path, count: int, seed: int = 7, scale: int = 1) -> list[Path]:
    """Write `count` documents of mixed formats, mostly 1-5 pages; return their paths.

    `scale` multiplies every document's length (paragraphs, and a PDF's pages): 10 gives PDFs
    of 10-50 pages and the other formats ten times the text."""
    rng = random.Random(seed)
    sentences = [corpus.SPANISH, corpus.ENGLISH]
    files: list[Path] = []
    for n in range(count):
        paragraphs = [
            f"{rng.choice(sentences)} ({n}.{p})" for p in range(rng.randint(3, 15) * scale)
        ]
        kind = n % 6
        if kind == 0:
            paragraphs = paragraphs[: len(paragraphs) // scale]  # a page's worth
            pages = [" ".join(paragraphs)] * (rng.randint(1, 5) * scale)
            files.append(corpus.pdf(directory, f"d{n}.pdf", pages))
        elif kind == 1:
            files.append(corpus.docx(directory, f"d{n}.docx", paragraphs))
        elif kind == 2:
            files.append(corpus.odt(directory, f"d{n}.odt", paragraphs))
        elif kind == 3:
            files.append(corpus.html(directory, f"d{n}.html", paragraphs))
        elif kind == 4:
            files.append(corpus.text(directory, f"d{n}.txt", "\n\n".join(paragraphs)))
        else:
            text = "\n\n".join(paragraphs)
            files.append(corpus.text(directory, f"d{n}-latin1.txt", text, encoding="latin-1"))
    return files


def _spent(times: Any) -> float:
    # The children's fields count processes already waited for: Tika forks the process it runs
    # in several times per document to look for external tools (`tesseract`), and that system
    # time lands there, not in the process's own user + system.
    return float(times.user + times.system + times.children_user + times.children_system)


def cpu_seconds() -> tuple[float, float]:
    """Return the CPU time (user + system) of this process, and that of its child processes
    (the parser processes), each with the processes it has waited for.

    A parser process retired after `recycle_after` jobs has been waited for by this process,
    so its time is in this process's children's fields: it is counted with the parsers, not
    with this process (runs of over a thousand documents per parser process retire some).
    """
    me = psutil.Process()
    own = me.cpu_times()
    children = float(own.children_user + own.children_system)
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += _spent(child.cpu_times())
    return float(own.user + own.system), children


_DIRECT = """
import json, os, sys, time
import iscc_tika
from ingest.adapters import _nospawn
if sys.argv[1] == "nospawn" and not _nospawn.install():
    sys.exit("the no-spawn filter could not be installed")
paths, warm_up, max_chars = json.loads(sys.stdin.readline())
extractor = iscc_tika.Extractor().set_extract_string_max_length(max_chars)
for path in paths[:warm_up]:
    extractor.extract_file_to_string(path)
if sys.argv[2:] == ["pair"]:  # warm: wait for the word to start, given to both at once
    print("ready", flush=True)
    sys.stdin.readline()
t0, c0 = time.monotonic(), os.times()
for path in paths:
    extractor.extract_file_to_string(path)
t1, c1 = time.monotonic(), os.times()
cpu = sum(c1[:4]) - sum(c0[:4])  # user, system, and those of the processes it waited for
print(json.dumps([len(paths) / (t1 - t0), len(paths) / cpu, t0, t1]))
"""


def direct_rate(files: list[Path], mode: str = "nospawn") -> tuple[float, float]:
    """Return files/s and files per CPU-second of iscc-tika called directly, warm, one file after
    another, in a process of its own that imports nothing else.

    `mode` "nospawn": under the same no-spawn filter as the vault's parser processes (the
    baseline the ratios use); "stock": as iscc-tika comes, which forks the process to look for
    `tesseract` on every document."""
    done = subprocess.run(
        [sys.executable, "-c", _DIRECT, mode],
        input=_job(files) + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    rate, per_cpu, _t0, _t1 = json.loads(done.stdout)
    return float(rate), float(per_cpu)


def _job(files: list[Path]) -> str:
    return json.dumps([[str(p) for p in files], WARM_UP, Limits().max_text_chars + 1])


def direct_pair_rate(files: list[Path]) -> float:
    """Return files/s of two direct processes (as `direct_rate`) parsing at once, each all of
    `files`: both warm up, then start together; the rate counts both processes' files over
    the time from the first start to the last end. What two cores give when nothing but Tika
    runs: the ceiling of any two-worker pipeline on this machine."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _DIRECT, "nospawn", "pair"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(_job(files) + "\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline() != "ready\n":
                raise RuntimeError("a direct process did not start")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            results.append(json.loads(proc.stdout.read()))
            if proc.wait() != 0:
                raise RuntimeError("a direct process failed")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    start = min(result[2] for result in results)
    end = max(result[3] for result in results)
    return 2 * len(files) / (end - start)


def fresh_vault(home: Path) -> Vault:
    settings = load_settings(home, jobs_poll_seconds=0.05)
    vault = create_vault(settings, "bench passphrase", "admin", kdf=FAST_KDF)
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
    return vault


def deposit_all(vault: Vault, files: list[Path]) -> float:
    """Deposit `files` in order; return the seconds it took."""
    with vault.sessions() as session:
        tina = principal_of(session, find_user(session, "tina"))
    case_id = create_case(vault, tina, "Bench").id
    with vault.sessions() as session:  # again: the creator's grant on the new case
        tina = principal_of(session, find_user(session, "tina"))
    start = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        fields = {"case": case_id, "kind": "document", "title": path.name, "consent": "therapy"}
        deposit = Deposit.start(vault, tina, fields, len(data))
        deposit.write(data)
        deposit.commit()
    return time.perf_counter() - start


def done(vault: Vault) -> int:
    with vault.sessions() as session:
        counts = jobs.counts(session)
    # The extract stage queues an index job per item; only finished extract jobs are counted.
    return counts.get(jobs.DONE, 0) + counts.get(jobs.FAILED, 0)


def machine_busy() -> tuple[float, float]:
    """Return (busy, total) CPU seconds of the whole machine since boot, all cores."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = float(sum(times))
    return total - idle, total


@dataclass(frozen=True)
class PipelineRun:
    """What one pipeline run measured; "cores" is the whole machine's, so it also shows
    other jobs. CPU per document: this process (worker threads, SQLite, sealing) and the
    parser processes (Tika, language detection), in milliseconds."""

    rate: float
    per_cpu: float
    deposit_seconds: float
    failed: int
    cores: float
    worker_ms: float
    parser_ms: float


def pipeline_rate(home: Path, files: list[Path], workers: int) -> PipelineRun:
    """Run the pipeline with `workers` on a fresh vault holding `files`; see `PipelineRun`."""
    vault = fresh_vault(home)
    try:
        deposit_seconds = deposit_all(vault, files[:WARM_UP] + files)
        total = WARM_UP + len(files)
        stages: dict[str, Callable[[Vault, int], extraction.ExtractStage]] = {
            jobs.EXTRACT: compose.extract_stage
        }
        worker = Worker(vault, concurrency=workers, stages=dict(stages))
        worker.start()
        try:
            while done(vault) < WARM_UP:
                time.sleep(0.02)
            start, cpu, first = time.perf_counter(), cpu_seconds(), done(vault)
            busy_before = machine_busy()
            while (finished := done(vault)) < total:
                time.sleep(0.05)
            seconds, cpu_after = time.perf_counter() - start, cpu_seconds()
            busy_after = machine_busy()
        finally:
            worker.stop()
        with vault.sessions() as session:
            failed = jobs.counts(session).get(jobs.FAILED, 0)
        count = finished - first
        cores = (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
        cores *= os.cpu_count() or 1
        own, parsers = cpu_after[0] - cpu[0], cpu_after[1] - cpu[1]
        return PipelineRun(
            rate=count / seconds,
            per_cpu=count / (own + parsers),
            deposit_seconds=deposit_seconds,
            failed=failed,
            cores=cores,
            worker_ms=1000 * own / count,
            parser_ms=1000 * parsers / count,
        )
    finally:
        vault.close()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="multiply every document's length (default 1: the corpus of the issue's target)",
    )
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    # Per measure, one figure a round: documents/s, documents per CPU-second, ratios to direct.
    wall: defaultdict[str, list[float]] = defaultdict(list)
    cpu: defaultdict[str, list[float]] = defaultdict(list)
    ratio: defaultdict[str, list[float]] = defaultdict(list)
    speedup: list[float] = []
    bound: list[float] = []  # the speed-up two workers would reach with both cores busy
    runs: dict[str, list[PipelineRun]] = {"one": [], "two": []}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        (root / "corpus").mkdir()
        files = make_corpus(root / "corpus", args.docs, scale=args.scale)
        size = sum(p.stat().st_size for p in files)
        load_before = os.getloadavg()[0]
        # direct, 1 worker, direct, 2 workers, direct, ...: each pipeline run is compared with
        # the direct runs just before and after it, so that the load other processes put on
        # the shared machine falls on both sides of each ratio alike.
        before = direct_rate(files)
        wall["direct"].append(before[0])
        cpu["direct"].append(before[1])
        for n in range(args.rounds):
            one = pipeline_rate(root / f"v{n}-1", files, 1)
            middle = direct_rate(files)
            two = pipeline_rate(root / f"v{n}-2", files, 2)
            after = direct_rate(files)
            pair = direct_pair_rate(files)
            stock = direct_rate(files, "stock")
            wall["stock"].append(stock[0])
            cpu["stock"].append(stock[1])
            wall["pair"].append(pair)
            for name, run in (("one", one), ("two", two)):
                wall[name].append(run.rate)
                cpu[name].append(run.per_cpu)
                runs[name].append(run)
            for direct in (middle, after):
                wall["direct"].append(direct[0])
                cpu["direct"].append(direct[1])
            ratio["one"].append(one.rate / ((before[0] + middle[0]) / 2))
            ratio["two"].append(two.rate / ((middle[0] + after[0]) / 2))
            ratio["one_cpu"].append(one.per_cpu / ((before[1] + middle[1]) / 2))
            ratio["two_cpu"].append(two.per_cpu / ((middle[1] + after[1]) / 2))
            ratio["pair"].append(pair / ((middle[0] + after[0]) / 2))
            speedup.append(two.rate / one.rate)
            bound.append(2 * 1000 / (two.worker_ms + two.parser_ms) / one.rate)
            before = after
        load_after = os.getloadavg()[0]
    failed = sum(run.failed for name in runs for run in runs[name])
    deposits = [len(files) / run.deposit_seconds for name in runs for run in runs[name]]
    direct_ms = [1000 / rate for rate in cpu["direct"]]
    lines = [
        "",
        f"## Ingest pipeline (bench/ingest.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, iscc-tika 0.6, SQLite + local object store; load average "
        f"{load_before:.2f} before, {load_after:.2f} after (the machine is shared with other "
        "test runs, so wall-clock figures move between runs; CPU-time figures much less).",
        f"Corpus: {len(files)} generated documents ({size / 1e6:.1f} MB): PDF of "
        f"{args.scale}-{5 * args.scale} pages, DOCX, ODT, HTML, UTF-8 and Latin-1 text of "
        f"{3 * args.scale}-{15 * args.scale} paragraphs, in equal parts"
        + (f" (`--scale {args.scale}`)." if args.scale != 1 else "."),
        f"{args.rounds} rounds of: direct, pipeline with 1 worker, direct, pipeline with 2 "
        "workers, direct, two direct processes at once, stock direct; each ratio is to the mean "
        "of the (no-spawn) direct runs beside it. Median (min-max) over rounds. Per CPU-second: "
        "documents per second of CPU time of every process involved, with the processes they "
        "waited for (for the pipeline: the worker and its parser processes).",
        "",
        "| run | documents/s | ratio | documents per CPU-second | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| iscc-tika direct, own process, no-spawn filter, one file after another | "
        f"{_spread(wall['direct'])} | 1.00 | {_spread(cpu['direct'])} | 1.00 |",
        f"| iscc-tika direct, two such processes at once (what two cores give Tika alone) | "
        f"{_spread(wall['pair'])} | {_spread(ratio['pair'])} | | |",
        f"| iscc-tika direct, own process, stock (forks to look for `tesseract`), for "
        f"information | {_spread(wall['stock'])} | "
        f"{statistics.median(wall['stock']) / statistics.median(wall['direct']):.2f} | "
        f"{_spread(cpu['stock'])} | "
        f"{statistics.median(cpu['stock']) / statistics.median(cpu['direct']):.2f} |",
        f"| pipeline, 1 worker (1 parser process, {worker_threads(1)} threads) | "
        f"{_spread(wall['one'])} | "
        f"{_spread(ratio['one'])} | {_spread(cpu['one'])} | {_spread(ratio['one_cpu'])} |",
        f"| pipeline, 2 workers (2 parser processes, {worker_threads(2)} threads) | "
        f"{_spread(wall['two'])} | "
        f"{_spread(ratio['two'])} | {_spread(cpu['two'])} | {_spread(ratio['two_cpu'])} |",
        "",
        f"Speed-up of 2 workers over 1: {_spread(speedup)}. Deposits (not in the rates): "
        f"{_spread(deposits)} documents/s. Failed jobs: {failed}. Target: >= 0.8 of direct "
        "with one worker; near-linear speed-up to two.",
        "",
        "CPU per document, in ms (median, min-max): iscc-tika direct "
        f"{_spread(direct_ms)}; 1 worker: worker process "
        f"{_spread([r.worker_ms for r in runs['one']])}, parser process "
        f"{_spread([r.parser_ms for r in runs['one']])}; 2 workers: worker process "
        f"{_spread([r.worker_ms for r in runs['two']])}, parser processes "
        f"{_spread([r.parser_ms for r in runs['two']])}. "
        f"Cores busy on the whole machine ({os.cpu_count()} in all): 1 worker "
        f"{_spread([r.cores for r in runs['one']])}, 2 workers "
        f"{_spread([r.cores for r in runs['two']])}. "
        "At the 2-worker CPU per document, both cores fully busy would give a speed-up over "
        f"1 worker of {_spread(bound)}.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(report)


if __name__ == "__main__":
    main()
