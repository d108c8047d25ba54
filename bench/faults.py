"""The long crash run (issue 23 point 5): 20 SIGKILLs of the server during deposits and 20 of the
worker during extraction, on SQLite and PostgreSQL; nothing may be lost.

Run: `.venv/bin/python -m bench.faults [--kills 20] [--clients 3] [--sqlite-only] [--append]`.
The scenario is tests/crash_support.py, which tests/integration/test_crashes.py runs with three
kills of each. Checked, per database: every id a client got back downloads byte-identical,
every item indexed, no failed job, no temp file, `tvault verify` clean (no unreferenced object).
Prints the counts, the time spent per phase and the load average; `--append` adds a section to
bench/RESULTS.md. Exit 1 if any check failed. PostgreSQL: `TVAULT_TEST_POSTGRES_URL` or
postgresql+psycopg://postgres@127.0.0.1:5432/test, in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import secrets
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from tests import crash_support

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _problems(outcome: crash_support.Outcome) -> list[str]:
    found = []
    if outcome.mismatched:
        found.append(f"{len(outcome.mismatched)} ids do not download identical")
    if outcome.failed_jobs:
        found.append(f"failed jobs: {outcome.failed_jobs[:5]}")
    if outcome.not_indexed:
        found.append(f"{outcome.not_indexed} items not indexed")
    if outcome.temp_files:
        found.append(f"temp files left: {outcome.temp_files[:5]}")
    if outcome.verify_exit != 0:
        found.append("tvault verify failed: " + outcome.verify_output.strip().splitlines()[-1])
    if outcome.items < len(outcome.deposited):
        found.append("fewer items than ids returned")
    return found


def _run_postgres(home: Path, kills: int, clients: int) -> crash_support.Outcome:
    base = os.environ.get("TVAULT_TEST_POSTGRES_URL", POSTGRES)
    schema = f"vault_bench_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        return crash_support.run(
            home,
            database_url=f"{base}{sep}options=-csearch_path%3D{schema}",
            server_kills=kills,
            worker_kills=kills,
            clients=clients,
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--kills", type=int, default=20, help="kills of the server, and of the worker"
    )
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()

    lines = []
    failed = False
    databases = ["sqlite"] if args.sqlite_only else ["sqlite", "postgresql"]
    for database in databases:
        load_before = os.getloadavg()
        with tempfile.TemporaryDirectory(prefix="tvault-bench-faults-") as folder:
            home = Path(folder) / "vault"
            if database == "sqlite":
                outcome = crash_support.run(
                    home, server_kills=args.kills, worker_kills=args.kills, clients=args.clients
                )
            else:
                outcome = _run_postgres(home, args.kills, args.clients)
        problems = _problems(outcome)
        failed = failed or bool(problems)
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in outcome.phases.items())
        line = (
            f"| {database} | {outcome.server_kills} | {outcome.worker_kills} | "
            f"{len(outcome.deposited)} | {outcome.items} | {outcome.client_errors} | "
            f"{len(outcome.failed_jobs)} | {outcome.not_indexed} | {len(outcome.mismatched)} | "
            f"{'clean' if outcome.verify_exit == 0 else 'FAILED'} | {outcome.seconds:.0f} s | "
            f"{load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} |"
        )
        lines.append(line)
        print(line)
        print(f"  phases: {phases}")
        for problem in problems:
            print(f"  PROBLEM: {problem}")

    header = (
        "| database | server kills | worker kills | ids returned | items | cut requests | "
        "failed jobs | not indexed | differing downloads | verify | time | load avg (1 min) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    if args.append:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = (
            f"\n## {now}: bench/faults.py (issue 23 point 5)\n\n"
            f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"{args.clients} clients deposit without stopping while the server and the worker "
            f"are each SIGKILLed {args.kills} times.\n\n{header}\n" + "\n".join(lines) + "\n"
        )
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(section)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
