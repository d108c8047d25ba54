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


def _interleaved(
    runs: dict[str, Callable[[Path], object]], files: list[Path], rounds: int
) -> dict[str, list[float]]:
    """Time each run on each file, alternating runs file by file so that load from other
    processes on the machine falls on all of them alike; return per-round totals."""
    totals: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for round_no in range(rounds):
        spent = dict.fromkeys(runs, 0.0)
        for path in files:
            for name in order if round_no % 2 == 0 else reversed(order):
                start = time.perf_counter()
                runs[name](path)
                spent[name] += time.perf_counter() - start
        for name, seconds in spent.items():
            totals[name].append(seconds)
    return totals


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

        runs: dict[str, Callable[[Path], object]] = {
            "direct": run_direct,
            "direct+lang": run_direct_lang,
            "ours": run_pooled,
        }
        for name, files in sets.items():
            totals = _interleaved(runs, files, args.rounds)
            rate = {k: len(files) / statistics.median(v) for k, v in totals.items()}
            ratios = [d / o for d, o in zip(totals["direct"], totals["ours"], strict=True)]
            ratios_lang = [
                d / o for d, o in zip(totals["direct+lang"], totals["ours"], strict=True)
            ]
            print(
                f"{name}: direct {rate['direct']:.1f} files/s; "
                f"direct + language {rate['direct+lang']:.1f} files/s; "
                f"NativeTikaExtractor {rate['ours']:.1f} files/s; "
                f"ratio to direct {statistics.median(ratios):.2f} "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f}), "
                f"to direct + language {statistics.median(ratios_lang):.2f}"
            )


if __name__ == "__main__":
    main()
