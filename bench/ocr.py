"""OCR through the pipeline against Tesseract called directly, on the same generated pages.

Pages are generated (`tests.scans`): Spanish and English paragraphs with accents and ñ, three
to a page, in DejaVu Serif at 10-point-at-300-dpi size; every third page degraded (turned by
90 or 180 degrees, skewed, blurred, noised). Each page is a PNG on /dev/shm.

- pipeline: `NativeTikaExtractor(workers=1, ocr=OcrOptions())` as the vault builds it: the
  parser process (Tika's parse, the image decoded, pixels to the OCR runner, Tesseract through
  pytesseract), one page after another.
- baseline: `tesseract PAGE stdout -l spa+eng --psm 1 --oem 1` with `OMP_THREAD_LIMIT=1`, the
  same recognition the pipeline asks for, one process per page.

The two alternate page by page, so both see the same load on a shared machine. The figure is
pages per second through the pipeline over pages per second of the baseline (target >= 0.8).
Also reports the character error rate of the pipeline's text on clean and degraded pages.

    .venv/bin/python bench/ocr.py [--pages 100] [--append-results]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import Limits, OcrOptions
from ingest.adapters import NativeTikaExtractor
from tests import scans

PARAGRAPHS = (scans.SPANISH, scans.ENGLISH, *scans.MORE)


def _pages(directory: Path, count: int) -> list[tuple[Path, str, bool]]:
    """Write `count` pages; return (path, text, degraded) for each."""
    made = []
    for number in range(count):
        chosen = [PARAGRAPHS[(number + k) % len(PARAGRAPHS)] for k in range(3)]
        text = "\n\n".join(chosen)
        page = scans.render(" ".join(chosen))
        degraded = number % 3 == 2
        if degraded:
            page = scans.degrade(page, seed=number, turn=90 if number % 2 else 180)
        path = directory / f"page-{number:04d}.png"
        page.save(path)
        made.append((path, text, degraded))
    return made


def _direct(path: Path) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = ["tesseract", str(path), "stdout", "-l", "spa+eng", "--psm", "1", "--oem", "1"]
    done = subprocess.run(command, capture_output=True, env=env, check=True)
    return done.stdout.decode("utf-8")


def run(count: int) -> dict[str, Any]:
    """Measure `count` pages both ways; return the figures."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="tvault-bench-ocr-") as scratch:
        pages = _pages(Path(scratch), count)
        pipeline_s = direct_s = 0.0
        clean_cer: list[float] = []
        degraded_cer: list[float] = []
        direct_cer: list[float] = []
        with NativeTikaExtractor(workers=1, ocr=OcrOptions()) as extractor:
            extractor.warm_up()
            extractor.extract(pages[0][0], Limits())  # the OCR runner's first use
            for path, text, degraded in pages:
                started = time.perf_counter()
                result = extractor.extract(path, Limits(timeout_s=300))
                pipeline_s += time.perf_counter() - started
                started = time.perf_counter()
                direct = _direct(path)
                direct_s += time.perf_counter() - started
                (degraded_cer if degraded else clean_cer).append(scans.cer(text, result.text))
                direct_cer.append(scans.cer(text, direct))
    return {
        "pages": count,
        "pipeline_pages_s": count / pipeline_s,
        "direct_pages_s": count / direct_s,
        "ratio": direct_s / pipeline_s,
        "cer_clean_mean": statistics.mean(clean_cer),
        "cer_clean_max": max(clean_cer),
        "cer_degraded_mean": statistics.mean(degraded_cer),
        "cer_degraded_max": max(degraded_cer),
        "cer_direct_mean": statistics.mean(direct_cer),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def _report(figures: dict[str, Any]) -> str:
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    f = figures
    pipeline, direct = f"{f['pipeline_pages_s']:.3f}", f"{f['direct_pages_s']:.3f}"
    ratio = f"{f['ratio']:.2f}"
    return f"""
## OCR (bench/ocr.py), {now}

Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work, Python
{platform.python_version()}, {version.splitlines()[0]}; load average {f["load_before"][0]:.1f}
before, {f["load_after"][0]:.1f} after (other processes were running).
Corpus: {f["pages"]} generated pages (`tests/scans.py`), 1600 px wide, three Spanish and English
paragraphs each (~660 characters, accents and ñ), DejaVu Serif at 36 px; every third page
degraded (turned 90 or 180 degrees, skewed 2 degrees, blurred, Gaussian noise and 1 % specks).

| | pages/s | ratio |
| --- | ---: | ---: |
| pipeline (`NativeTikaExtractor`, one worker, OCR on) | {pipeline} | {ratio} (target >= 0.8) |
| `tesseract` called directly (same options) | {direct} | 1.00 |

Character error rate of the pipeline's text: clean pages mean {f["cer_clean_mean"]:.2%}, worst
{f["cer_clean_max"]:.2%} (target <= 3 %); degraded pages mean {f["cer_degraded_mean"]:.2%},
worst {f["cer_degraded_max"]:.2%} (target <= 10 %). Tesseract called directly: mean
{f["cer_direct_mean"]:.2%}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--append-results", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        print("tesseract is not installed (make tools)", file=sys.stderr)
        return 2
    report = _report(run(args.pages))
    print(report)
    if args.append_results:
        with (Path(__file__).parent / "RESULTS.md").open("a") as results:
            results.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
