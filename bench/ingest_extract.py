"""Extraction throughput: NativeTikaExtractor vs iscc-tika called directly in this process.

Run: `.venv/bin/python -m bench.ingest_extract [--rounds 3] [--pages 50]`. Generates its corpus
with `tests.corpus` under a temporary directory and deletes it afterwards. The baseline is
iscc-tika's `extract_file_to_string` in this process, on the same files, warm; the issue's target
for the whole pipeline is >= 0.8 of it with one worker.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import iscc_tika

from ingest import Limits, detect_language
from ingest.adapters import NativeTikaExtractor
from tests import corpus


def _make_corpus(directory: Path, pages: int) -> dict[str, list[Path]]:
    small = []
    for n in range(20):
        small.append(corpus.docx(directory, f"d{n}.docx"))
        small.append(corpus.pdf(directory, f"p{n}.pdf"))
        small.append(corpus.odt(directory, f"o{n}.odt"))
        small.append(corpus.text(directory, f"t{n}.txt", encoding="latin-1"))
        small.append(corpus.html(directory, f"h{n}.html"))
    big = [
        corpus.pdf(directory, f"big{n}.pdf", pages=[corpus.SPANISH * 3] * pages) for n in range(4)
    ]
    return {
        "small (100 files: docx, pdf, odt, txt, html)": small,
        f"{pages}-page PDF (4 files)": big,
    }


def _time(run: Callable[[Path], object], files: list[Path], rounds: int) -> float:
    """Return the best of `rounds` wall-clock times for extracting every file once."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for path in files:
            run(path)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    limits = Limits()
    direct = iscc_tika.Extractor().set_extract_string_max_length(limits.max_text_chars + 1)

    def run_direct(path: Path) -> object:
        return direct.extract_file_to_string(str(path))

    def run_direct_lang(path: Path) -> object:
        text, _ = direct.extract_file_to_string(str(path))
        return detect_language(text)

    print(f"python {platform.python_version()}, {platform.machine()}, iscc-tika 0.6")
    with tempfile.TemporaryDirectory() as tmp, NativeTikaExtractor(workers=1) as pooled:
        sets = _make_corpus(Path(tmp), args.pages)
        warm = next(iter(sets.values()))[0]
        run_direct(warm)
        run_direct_lang(warm)
        start = time.perf_counter()
        pooled.warm_up(limits)
        print(f"parser process start (warm_up): {time.perf_counter() - start:.2f} s")
        pooled.extract(warm, limits)

        def run_pooled(path: Path) -> object:
            return pooled.extract(path, limits)

        for name, files in sets.items():
            base = _time(run_direct, files, args.rounds)
            base_lang = _time(run_direct_lang, files, args.rounds)
            ours = _time(run_pooled, files, args.rounds)
            print(
                f"{name}: direct {len(files) / base:.1f} files/s; "
                f"direct + language {len(files) / base_lang:.1f} files/s; "
                f"NativeTikaExtractor {len(files) / ours:.1f} files/s; "
                f"ratio to direct {base / ours:.2f}, to direct + language {base_lang / ours:.2f}"
            )
        per_file = []
        for path in sets[next(iter(sets))][:20]:
            start = time.perf_counter()
            run_pooled(path)
            middle = time.perf_counter()
            run_direct(path)
            per_file.append((middle - start) - (time.perf_counter() - middle))
        print(f"median overhead per small file: {statistics.median(per_file) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
