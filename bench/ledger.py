"""Benchmark the custody ledger: append cost, entries/s, checkpointing and proofs at 100,000.

Run: `.venv/bin/python bench/ledger.py [--entries 100000] [--postgres URL] [--append-results]`.
Uses a SQLite file under /tmp with the vault's pragmas (WAL, synchronous=FULL), deleted after.
Targets (issue 4, point 6): append adds < 1 ms to a request on SQLite; checkpointing 100,000
entries < 5 s.
"""

from __future__ import annotations

import argparse
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keys
from vault import ledger
from vault.db.base import Base
from vault.ledger import actions, checkpoints, mac
from vault.ledger.tables import CheckpointRow, LedgerRow, LedgerState

# A stand-in for the row a request writes (an item), to time a request with and without append.
_other = MetaData()
PG_SCHEMA = "bench_ledger"
WORK = Table("bench_work", _other, Column("id", Integer, primary_key=True), Column("v", String))


class DirStore:
    """Checkpoint copies in a directory (what the local ObjectStore does, minus its fsyncs)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_locked(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=FULL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", _pragmas)
    else:
        # A schema of our own, so a shared database's other tables are never touched.
        with create_engine(url).begin() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
        engine = create_engine(url, connect_args={"options": f"-csearch_path={PG_SCHEMA}"})
    tables = [LedgerRow.__table__, LedgerState.__table__, CheckpointRow.__table__]
    Base.metadata.drop_all(engine, tables=tables)  # type: ignore[arg-type]
    _other.drop_all(engine)
    Base.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
    _other.create_all(engine)
    return engine


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def details(n: int) -> dict[str, object]:
    return {"sha256": f"{n:064x}", "size": n * 1000, "purpose": "download"}


def request_cost(sessions: sessionmaker[Session], rounds: int) -> dict[str, float]:
    """Median time of a one-row request transaction without and with a ledger append."""
    plain, with_ledger, call = [], [], []
    for n in range(rounds):
        start = time.perf_counter()
        with sessions.begin() as session:
            session.execute(WORK.insert().values(v="x"))
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        with sessions.begin() as session:
            session.execute(WORK.insert().values(v="x"))
            t0 = time.perf_counter()
            ledger.append(session, actor="bench", action=actions.DECRYPTION, details=details(n))
            call.append(time.perf_counter() - t0)
        with_ledger.append(time.perf_counter() - start)
    return {
        "request_ms": statistics.median(plain) * 1e3,
        "request_with_append_ms": statistics.median(with_ledger) * 1e3,
        "append_call_median_ms": statistics.median(call) * 1e3,
        "append_call_p99_ms": sorted(call)[int(len(call) * 0.99)] * 1e3,
    }


def fill(sessions: sessionmaker[Session], total: int, batch: int = 1000) -> None:
    """Append until the ledger holds `total` entries, `batch` per transaction."""
    with sessions() as session:
        have = ledger.size(session)
    while have < total:
        with sessions.begin() as session:
            for _ in range(min(batch, total - have)):
                ledger.append(session, actor="bench", action=actions.SEARCH, details=details(have))
                have += 1


def run(url: str, entries: int, workdir: Path) -> dict[str, float]:
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    key = secrets.token_bytes(32)  # the ledger key, as a vault's first open makes and binds it
    with sessions.begin() as session:
        mac.upgrade(session, key)
    mac.bind(sessions, key)
    signer, store = keys.LogSigner.generate(), DirStore(workdir / "objects")
    origin = "bench.example/log"
    result = request_cost(sessions, 300)
    with sessions() as session:
        start_size = ledger.size(session)
    start = time.perf_counter()
    fill(sessions, entries)
    with sessions() as session:
        filled = ledger.size(session) - start_size
    result["entries_per_s_batched"] = filled / (time.perf_counter() - start)

    def sign() -> None:
        with sessions.begin() as session:
            checkpoints.create(session, signer=signer, store=store, origin=origin)

    result["checkpoint_first_s"] = timed(sign)
    fill(sessions, entries + 1000)
    result["checkpoint_next_1000_s"] = timed(sign)
    with sessions() as session:
        size = checkpoints.latest(session).size  # type: ignore[union-attr]
        result["inclusion_proof_s"] = timed(lambda: ledger.inclusion(session, size // 3))
        result["consistency_proof_s"] = timed(lambda: ledger.consistency(session, entries))
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {PG_SCHEMA} CASCADE"))
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument(
        "--postgres", help="also run on this PostgreSQL URL (in a schema of its own)"
    )
    parser.add_argument("--append-results", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tvault-bench-ledger-", dir="/tmp"))
    results: dict[str, dict[str, float]] = {}
    try:
        results["SQLite (WAL, synchronous=FULL)"] = run(
            f"sqlite:///{workdir / 'ledger.sqlite'}", args.entries, workdir
        )
        if args.postgres:
            results["PostgreSQL 127.0.0.1"] = run(args.postgres, args.entries, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        "",
        f"## Custody ledger (bench/ledger.py, {args.entries:,} entries)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}, shared 2-core machine. "
        "Baseline for the append cost: the same one-row transaction without the append.",
        "",
        "| database | request | request + append | append call median / p99 | entries/s "
        "(1,000 per tx) | checkpoint 100k (first, all re-hashed) | next checkpoint (+1,000) "
        "| inclusion proof | consistency proof |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['request_ms']:.2f} ms | {r['request_with_append_ms']:.2f} ms "
            f"| {r['append_call_median_ms']:.2f} / {r['append_call_p99_ms']:.2f} ms "
            f"| {r['entries_per_s_batched']:,.0f} | {r['checkpoint_first_s']:.2f} s "
            f"| {r['checkpoint_next_1000_s']:.2f} s | {r['inclusion_proof_s'] * 1e3:.0f} ms "
            f"| {r['consistency_proof_s'] * 1e3:.0f} ms |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append_results:
        with (Path(__file__).parent / "RESULTS.md").open("a") as results_file:
            results_file.write(text)


if __name__ == "__main__":
    main()
