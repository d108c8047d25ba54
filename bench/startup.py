"""Benchmark how fast `tvault` starts: `--help` and client commands, as a ratio to `python -c pass`.

Run: `.venv/bin/python bench/startup.py [--rounds 21] [--append-results]`.
Each round runs every command once, in turn, so load that comes and goes touches all of them
alike (as hyperfine's repeated runs do; the median is reported). The client commands talk to a
port nobody listens on, so they start, parse, build their request and meet a refused
connection: what is timed is the command line itself, not a server. (`deposit` is left out: it
retries a lost connection for ~15 s; it loads what `get` loads.)
Target (issue 20, point 11): `tvault --help` and every client command under 300 ms; on the
shared VM the ratio to `python -c pass` is what carries over between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ITEM = "a" * 26
TARGET_MS = 300.0


def free_port() -> int:
    """Return a port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def commands(tvault: str, sample: Path) -> dict[str, list[str]]:
    """Return the command lines timed, by name; the first is the baseline."""
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "tvault --help": [tvault, "--help"],
        "tvault status ITEM": [tvault, "status", ITEM],
        "tvault cases list": [tvault, "cases", "list"],
        "tvault search QUERY": [tvault, "search", "Quispe"],
        "tvault get ITEM": [tvault, "get", ITEM, "-o", str(sample.with_suffix(".out"))],
        "tvault approvals list": [tvault, "approvals", "list"],
        "tvault ledger checkpoint": [tvault, "ledger", "checkpoint"],
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `argv` once; return its wall-clock and CPU seconds (user + system). Raises if it
    printed a traceback or exited other than 0 or 1."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if b"Traceback" in done.stderr or done.returncode not in (0, 1):
        raise RuntimeError(f"{argv[1:]} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    tvault = str(Path(sys.executable).with_name("tvault"))
    sample = Path(f"/tmp/tvault-startup-{os.getpid()}.txt")
    sample.write_bytes(b"A testimony.\n")
    env = {
        **os.environ,
        "TVAULT_URL": f"http://127.0.0.1:{free_port()}",
        "TVAULT_TOKEN": "not-a-token",
    }
    lines_of = commands(tvault, sample)
    times: dict[str, list[float]] = {name: [] for name in lines_of}
    cpus: dict[str, list[float]] = {name: [] for name in lines_of}
    try:
        for argv in lines_of.values():
            timed(argv, env)  # warm the page cache and the bytecode cache first
        for _ in range(args.rounds):
            for name, argv in lines_of.items():
                wall, cpu = timed(argv, env)
                times[name].append(wall)
                cpus[name].append(cpu)
    finally:
        sample.unlink()
    base = statistics.median(times["python -c pass"])
    base_cpu = statistics.median(cpus["python -c pass"])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    lines = [
        "",
        f"### `tvault` start-up (bench/startup.py, issue 20 point 11) {stamp} UTC",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at the end; "
        f"{args.rounds} rounds, each command once per round; medians (min-max). CPU time "
        "(user + system) is what load changes least: it is the figure held against 300 ms.",
        "",
        "| command | wall ms | wall min-max | wall ratio to `python -c pass` | CPU ms "
        "| CPU ratio | CPU under 300 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, runs in times.items():
        median, cpu = statistics.median(runs), statistics.median(cpus[name])
        lines.append(
            f"| `{name}` | {median * 1000:.0f} | {min(runs) * 1000:.0f}-{max(runs) * 1000:.0f} "
            f"| {median / base:.1f} | {cpu * 1000:.0f} | {cpu / base_cpu:.1f} "
            f"| {'yes' if cpu * 1000 < TARGET_MS else 'no'} |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with (Path(__file__).parent / "RESULTS.md").open("a") as out:
            out.write(text)


if __name__ == "__main__":
    main()
