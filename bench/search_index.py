"""Benchmark the embedded search index: indexing rate, query latency per kind, snippet time.

Indexes N generated ~2 KB documents (mixed Spanish/English, with generated names) into the
tantivy adapter in a temporary directory, then runs each kind of query in a 10-case scope and
reports p50/p99, with and without building the snippets of the page. Appends a section to
bench/RESULTS.md when `--record` is given. Usage:

    .venv/bin/python bench/search_index.py [--docs 100000] [--queries 300] [--record]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from search import AccessScope, IndexDocument, MemoryVocabularyStore, Query, highlight
from search.adapters.tantivy_index import TantivyIndex


def _split(words: str) -> list[str]:
    return words.split()


ES_WORDS = _split(
    "la el los las de del en y que a por con para una un su sus se no al lo como más pero "
    "detención detenciones tortura torturas torturaron policía policías comisaría cárcel "
    "interrogatorio interrogaron golpes eléctricos declaración declaraciones declaró juez "
    "testigo testigos hermano hermana madre padre hijo hija noche días semanas meses años "
    "militares soldados capitán sargento celda oscuridad miedo dolor desaparición desaparecido "
    "familia casa calle pueblo ciudad camión vendaron ojos amenazaron nombre abogado fiscal "
    "denuncia proceso sentencia memoria verdad justicia reparación sobreviviente víctima"
)
EN_WORDS = _split(
    "the of and to in a was that he she they we it for with on at by from his her their not "
    "arrest arrested arrests detention detained torture tortured police station prison cell "
    "interrogation interrogated beaten electric shocks statement statements declared judge "
    "witness witnesses brother sister mother father son daughter night days weeks months years "
    "soldiers captain sergeant darkness fear pain disappearance disappeared family house "
    "street village city truck blindfolded threatened name lawyer prosecutor complaint trial "
    "sentence memory truth justice reparation survivor victim"
)
SYLLABLES = _split("ma ni qui spe cho que mi a hua ca ri ta pa ku ya lla ru ti co se")


def _names(rng: random.Random, count: int) -> list[str]:
    return sorted(
        {"".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))).title() for _ in range(count)}
    )


def _text(rng: random.Random, words: list[str], names: list[str], size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        sentence = rng.choices(words, k=rng.randint(8, 18))
        sentence[rng.randrange(len(sentence))] = rng.choice(names)
        if rng.random() < 0.2:
            sentence.append(str(rng.randint(1970, 1990)))
        line = " ".join(sentence).capitalize() + "."
        out.append(line)
        length += len(line) + 1
    return " ".join(out)


def _documents(count: int, seed: int, texts: dict[str, str]) -> Iterator[IndexDocument]:
    rng = random.Random(seed)
    names = _names(rng, 20000)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    for n in range(count):
        spanish = rng.random() < 0.6
        text = _text(rng, ES_WORDS if spanish else EN_WORDS, names, 2000)
        item_id = f"item-{n:06d}"
        texts[item_id] = text
        yield IndexDocument(
            item_id=item_id,
            case_id=f"case-{rng.randrange(200):03d}",
            kind=rng.choice(("testimony", "note", "scan", "audio")),
            language="es" if spanish else "en",
            created=start + timedelta(minutes=rng.randrange(10 * 365 * 24 * 60)),
            tags=frozenset(rng.sample(("detention", "torture", "disappearance", "exile"), 2)),
            consent=frozenset(rng.sample(("legal", "therapy", "archive", "advocacy_named"), 2)),
            text=text,
        )


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="tantivy writer threads")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="tvault-bench-search-", dir="/tmp"))
    texts: dict[str, str] = {}
    try:
        index = TantivyIndex(
            workdir / "index", os.urandom(32), MemoryVocabularyStore(), writer_threads=args.threads
        )
        documents = _documents(args.docs, 7, texts)
        indexing = 0.0
        batch: list[IndexDocument] = []
        for doc in documents:
            batch.append(doc)
            if len(batch) == 1000:
                began = time.perf_counter()
                index.index(batch)
                indexing += time.perf_counter() - began
                batch = []
        began = time.perf_counter()
        index.index(batch)
        index.commit()
        indexing += time.perf_counter() - began
        rate = args.docs / indexing
        size = sum(f.stat().st_size for f in (workdir / "index").rglob("*") if f.is_file())

        rng = random.Random(11)
        names = _names(random.Random(7), 20000)
        scope = AccessScope(
            frozenset(f"case-{n:03d}" for n in rng.sample(range(200), 10)),
            frozenset({"legal", "therapy", "archive"}),
        )
        words = ES_WORDS[40:] + EN_WORDS[40:]
        kinds: dict[str, Callable[[], str]] = {
            "word": lambda: rng.choice(words),
            "two words (AND)": lambda: f"{rng.choice(words)} {rng.choice(words)}",
            "phrase": lambda: '"golpes eléctricos"' if rng.random() < 0.5 else '"electric shocks"',
            "OR / NOT": lambda: f"{rng.choice(words)} OR {rng.choice(words)} -{rng.choice(words)}",
            "prefix": lambda: rng.choice(words)[:4] + "*",
            "fuzzy name": lambda: rng.choice(names)[:-1] + "x~1",
            "filtered": lambda: f"{rng.choice(words)} lang:es year:{rng.randint(2015, 2024)}",
        }
        rows = []
        all_with_snippets: list[float] = []
        for kind, make in kinds.items():
            plain: list[float] = []
            with_snippets: list[float] = []
            for _ in range(args.queries):
                text = make()
                began = time.perf_counter()
                results = index.search(Query(text, scope, page_size=20))
                searched = time.perf_counter()
                for hit in results.hits:
                    highlight(texts[hit.item_id], text, hit.language)
                done = time.perf_counter()
                plain.append((searched - began) * 1000)
                with_snippets.append((done - began) * 1000)
            all_with_snippets += with_snippets
            rows.append((kind, *_percentiles(plain), *_percentiles(with_snippets)))
        snippet_times = []
        sample = list(texts.items())[:200]
        for _item_id, text in sample:
            began = time.perf_counter()
            highlight(text, "detencion tortur* Mamani~1", "es")
            snippet_times.append((time.perf_counter() - began) * 1000)
        index.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    overall = _percentiles(all_with_snippets)
    snippet = _percentiles(snippet_times)
    lines = [
        "",
        f"## search index (tantivy, index layer) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs,"
        f" Python {platform.python_version()}; `bench/search_index.py --docs {args.docs}"
        f" --queries {args.queries} --threads {args.threads}`.",
        f"Corpus: {args.docs:,} generated docs of ~2 KB (60% es / 40% en, 20,000 generated"
        f" names), 200 cases; index on disk {size / 2**20:.0f} MiB.",
        f"Indexing (analysis + HMAC digests + tantivy, commit included): {rate:,.0f} items/s"
        f" (target >= 2,000; NOTES.md baseline for tantivy alone ~7,900 docs/s:"
        f" {rate / 7900:.2f}x).",
        "Queries in a 10-case scope, page of 20 hits, facets on; milliseconds;"
        " 'with snippets' adds `highlight` over each hit's text:",
        "",
        "| query kind | p50 | p99 | p50 with snippets | p99 with snippets |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| {k} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} |" for k, a, b, c, d in rows),
        f"| all kinds | | | {overall[0]:.2f} | {overall[1]:.2f} |",
        "",
        f"Snippet alone on a ~2 KB text: p50 {snippet[0]:.2f} ms, p99 {snippet[1]:.2f} ms."
        " Targets (through the HTTP API, later): p50 <= 15 ms, p99 <= 60 ms.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.record:
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as out:
            out.write(report)


if __name__ == "__main__":
    main()
