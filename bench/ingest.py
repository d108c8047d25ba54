"""Ingest pipeline throughput: the `extract` stage through workers vs iscc-tika called directly.

Run: `.venv/bin/python -m bench.ingest [--docs 500] [--append]`. Generates a mixed corpus with
`tests.corpus` (PDF of 1-5 pages, DOCX, ODT, HTML, UTF-8 and Latin-1 text) under a temporary
directory, deleted afterwards. In the same run it times:

- the baseline: iscc-tika's `extract_file_to_string` in this process, warm, one file after
  another on the same files;
- the pipeline: the files deposited into a fresh embedded vault (SQLite, local object store;
  deposit time reported apart), then a `vault.worker.Worker` (the same code as the server's
  thread and `tvault worker`) with 1, then on a fresh vault 2, threads and parser processes,
  from the moment warm-up jobs are done until every job is: decrypt to a private tmpfs file,
  parse in a parser process, detect the language, seal the text, commit link + ledger entry +
  next job + completion.

Reports documents/s and the ratios (pipeline / direct; 2 workers / 1 worker). `--append` adds
a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import iscc_tika
import psutil

from ingest import Limits
from keys import KdfParams
from tests import corpus
from vault import extraction, jobs
from vault.accounts import add_user, find_user, principal_of
from vault.cases import create_case
from vault.compose import Vault
from vault.deposit import Deposit
from vault.provision import create_vault
from vault.settings import load_settings
from vault.worker import Worker

FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
WARM_UP = 4
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def make_corpus(directory: Path, count: int, seed: int = 7) -> list[Path]:
    """Write `count` documents of mixed formats, mostly 1-5 pages; return their paths."""
    rng = random.Random(seed)
    sentences = [corpus.SPANISH, corpus.ENGLISH]
    files: list[Path] = []
    for n in range(count):
        paragraphs = [f"{rng.choice(sentences)} ({n}.{p})" for p in range(rng.randint(3, 15))]
        kind = n % 6
        if kind == 0:
            pages = [" ".join(paragraphs)] * rng.randint(1, 5)
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


def cpu_seconds() -> float:
    """Return the CPU time (user + system) of this process and every live child process."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def direct_rate(files: list[Path]) -> tuple[float, float]:
    """Return files/s and files per CPU-second of iscc-tika called in this process, warm."""
    limits = Limits()
    extractor = iscc_tika.Extractor().set_extract_string_max_length(limits.max_text_chars + 1)
    for path in files[:WARM_UP]:
        extractor.extract_file_to_string(str(path))
    start, cpu = time.perf_counter(), cpu_seconds()
    for path in files:
        extractor.extract_file_to_string(str(path))
    return len(files) / (time.perf_counter() - start), len(files) / (cpu_seconds() - cpu)


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


def pipeline_rate(home: Path, files: list[Path], workers: int) -> tuple[float, float, float, int]:
    """Return (docs/s, docs per CPU-second, deposit seconds, failed jobs) on a fresh vault.

    CPU time counts this process (worker threads, SQLite, sealing, language detection) and the
    parser processes."""
    vault = fresh_vault(home)
    try:
        deposit_seconds = deposit_all(vault, files[:WARM_UP] + files)
        total = WARM_UP + len(files)
        stages: dict[str, Callable[[Vault, int], extraction.ExtractStage]] = {
            jobs.EXTRACT: extraction._factory
        }
        worker = Worker(vault, concurrency=workers, stages=dict(stages))
        worker.start()
        try:
            while done(vault) < WARM_UP:
                time.sleep(0.02)
            start, cpu, first = time.perf_counter(), cpu_seconds(), done(vault)
            while (finished := done(vault)) < total:
                time.sleep(0.05)
            seconds, cpu_spent = time.perf_counter() - start, cpu_seconds() - cpu
        finally:
            worker.stop()
        with vault.sessions() as session:
            failed = jobs.counts(session).get(jobs.FAILED, 0)
        count = finished - first
        return count / seconds, count / cpu_spent, deposit_seconds, failed
    finally:
        vault.close()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    wall: dict[str, list[float]] = {"direct": [], "one": [], "two": []}
    cpu: dict[str, list[float]] = {"direct": [], "one": [], "two": []}
    ratio: dict[str, list[float]] = {"one": [], "two": [], "one_cpu": [], "two_cpu": []}
    speedup: list[float] = []
    deposits: list[float] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        (root / "corpus").mkdir()
        files = make_corpus(root / "corpus", args.docs)
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
            for name, run in (("one", one), ("two", two)):
                wall[name].append(run[0])
                cpu[name].append(run[1])
                deposits.append(len(files) / run[2])
                failed += run[3]
            for direct in (middle, after):
                wall["direct"].append(direct[0])
                cpu["direct"].append(direct[1])
            ratio["one"].append(one[0] / ((before[0] + middle[0]) / 2))
            ratio["two"].append(two[0] / ((middle[0] + after[0]) / 2))
            ratio["one_cpu"].append(one[1] / ((before[1] + middle[1]) / 2))
            ratio["two_cpu"].append(two[1] / ((middle[1] + after[1]) / 2))
            speedup.append(two[0] / one[0])
            before = after
        load_after = os.getloadavg()[0]
    lines = [
        "",
        f"## Ingest pipeline (bench/ingest.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, iscc-tika 0.6, SQLite + local object store; load average "
        f"{load_before:.2f} before, {load_after:.2f} after (the machine is shared with other "
        "test runs, so wall-clock figures move between runs; CPU-time figures much less).",
        f"Corpus: {len(files)} generated documents ({size / 1e6:.1f} MB): PDF of 1-5 pages, DOCX, "
        "ODT, HTML, UTF-8 and Latin-1 text, in equal parts.",
        f"{args.rounds} rounds of: direct, pipeline with 1 worker, direct, pipeline with 2 "
        "workers, direct; each ratio is to the mean of the direct runs beside it. Median "
        "(min-max) over rounds. Per CPU-second: documents per second of CPU time of every "
        "process involved (for the pipeline: the worker and its parser processes).",
        "",
        "| run | documents/s | ratio | documents per CPU-second | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| iscc-tika direct, in process, one file after another | {_spread(wall['direct'])} | "
        f"1.00 | {_spread(cpu['direct'])} | 1.00 |",
        f"| pipeline, 1 worker (1 parser process, 2 threads) | {_spread(wall['one'])} | "
        f"{_spread(ratio['one'])} | {_spread(cpu['one'])} | {_spread(ratio['one_cpu'])} |",
        f"| pipeline, 2 workers (2 parser processes, 3 threads) | {_spread(wall['two'])} | "
        f"{_spread(ratio['two'])} | {_spread(cpu['two'])} | {_spread(ratio['two_cpu'])} |",
        "",
        f"Speed-up of 2 workers over 1: {_spread(speedup)}. Deposits (not in the rates): "
        f"{_spread(deposits)} documents/s. Failed jobs: {failed}. Target: >= 0.8 of direct "
        "with one worker; near-linear speed-up to two.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(report)


if __name__ == "__main__":
    main()
