"""Benchmark where the search vocabulary is kept: one sealed file vs the shared database log.

Before issue 21 every index commit resealed and rewrote the whole vocabulary file (age seal,
fsync, rename: `SealedVocabularyFile`, re-created here as it was); now a commit appends one
sealed change of the new words to the metadata database (`vault.vocabulary.DatabaseVocabulary`)
and compacts every 256 changes. For vocabularies of several sizes this measures, on SQLite in
the vault's own settings (WAL, synchronous=FULL) and on PostgreSQL when reachable:

- commit: the cost of saving the words one index batch added (20 new words), old and new, and
  the ratio new/old in the same run;
- search: the read a prefix or fuzzy query makes first when nothing changed;
- open: what a new process reads (one snapshot and the changes after it).

Usage: .venv/bin/python bench/vocabulary.py [--sizes 10000,50000,200000] [--commits 50]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import keys
from search.vocabulary import Vocabulary, pack
from vault.db import make_engine, make_sessions, migrate
from vault.vocabulary import DatabaseVocabulary

PG_URL = os.environ.get("TVAULT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")


def _words(rng: random.Random, count: int) -> list[str]:
    return [
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 11))) for _ in range(count)
    ]


def _sealed_file_save(path: Path, data: bytes, recipient: str) -> None:
    """What `SealedVocabularyFile.save` did on every commit: seal, fsync, rename, fsync dir."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as dst:
        keys.seal(io.BytesIO(data), dst, [recipient])
        dst.flush()
        os.fsync(dst.fileno())
    tmp.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _measure(
    rng: random.Random, url: str, size: int, commits: int, file_path: Path
) -> tuple[list[float], list[float], list[float], list[float]]:
    identity, recipient = keys.generate_identity()
    engine = make_engine(url)
    migrate(engine)
    store = DatabaseVocabulary(make_sessions(engine), identity)
    full = Vocabulary()
    for word in _words(rng, size):
        full.add(word, word)
    store.replace(pack(full, full), None)
    position = store.read(0).position
    old, new = [], []
    try:
        for _ in range(commits):
            delta = Vocabulary()
            for word in _words(rng, 20):
                full.add(word, word)
                delta.add(word, word)
            start = time.perf_counter()
            _sealed_file_save(file_path, pack(full, full), recipient)
            old.append(time.perf_counter() - start)
            start = time.perf_counter()
            position = store.read(position).position  # the read before each save
            store.append(pack(delta, delta))
            new.append(time.perf_counter() - start)
        position = store.read(position).position
        search = []
        for _ in range(200):
            start = time.perf_counter()
            store.read(position)
            search.append(time.perf_counter() - start)
        opened = []
        for _ in range(3):
            start = time.perf_counter()
            store.read(0)
            opened.append(time.perf_counter() - start)
    finally:
        with engine.begin() as connection:  # leave the next size an empty log
            connection.exec_driver_sql("DELETE FROM search_vocabulary")
        engine.dispose()
    return old, new, search, opened


def run(url: str, label: str, sizes: list[int], commits: int, workdir: Path) -> list[str]:
    rng = random.Random(21)
    rows = []
    for size in sizes:
        file_path = workdir / f"vocabulary-{label}-{size}.age"
        old, new, search, opened = _measure(rng, url, size, commits, file_path)
        old_ms, new_ms = _median_ms(old), _median_ms(new)
        rows.append(
            f"| {label} | {size:,} | {old_ms:.2f} | {new_ms:.2f} | {new_ms / old_ms:.3f} "
            f"| {_median_ms(search):.3f} | {_median_ms(opened):.1f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--commits", type=int, default=50)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()}")
    header = (
        "| database | words | file: ms per commit | database: ms per commit | ratio new/old "
        "| search read, ms | open, ms |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rows += run(
            f"sqlite+pysqlite:///{workdir / 'vault.db'}", "SQLite", sizes, args.commits, workdir
        )
        try:
            import psycopg

            with psycopg.connect(
                PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3
            ):
                pass
        except Exception as exc:
            print(f"PostgreSQL skipped: {exc}")
        else:
            schema = f"bench_vocabulary_{os.getpid()}"
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_URL)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                url = f"{PG_URL}?options=-csearch_path%3D{schema}"
                rows += run(url, "PostgreSQL", sizes, args.commits, workdir)
            finally:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(header)
    print("\n".join(rows))
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
