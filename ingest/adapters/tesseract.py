"""Tesseract OCR through `pytesseract`: the default `ingest.OcrEngine`.

Runs in the OCR runner (`ingest.adapters._ocr_runner`), never in a server or worker process.
pytesseract hands Tesseract the page as a temporary image file and reads its answer from
another; both hold a survivor's words in the clear. The engine therefore refuses to run unless
Python's temporary directory is on a memory file system (tmpfs or ramfs, read from
/proc/self/mountinfo): the runner points it at the sandbox's private tmpfs `/tmp`, or at
`/dev/shm` where there is no sandbox. pytesseract deletes both files after each call; the
directory vanishes with the sandbox anyway.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Final

from ingest.ports import ExtractionError, FailureKind, PageImage, RecognisedPage

__all__ = ["THREADS", "TesseractEngine", "filesystem_type", "memory_directory"]

MEMORY_FILESYSTEMS: Final = frozenset({"tmpfs", "ramfs"})
# --psm 1: automatic page segmentation with orientation and script detection, so a page
# scanned upside down or sideways is read the right way up (measured: --psm 3 read a page
# turned by 90 degrees as nonsense). --oem 1: the LSTM engine, the only one Debian's models hold.
_CONFIG: Final = "--psm 1 --oem 1"
# Tesseract's own threads (OpenMP) cost more than they save on a shared machine (measured: one
# page 5.6 s with its default threads, 2.4 s with one, while other work ran); the runner sets
# OMP_THREAD_LIMIT to this for the programs it starts.
THREADS: Final = "1"


def filesystem_type(path: str) -> str | None:
    """Return the type of the file system `path` is on (`tmpfs`, `ext4`, ...), or None."""
    real = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/self/mountinfo") as mounts:
            for line in mounts:
                # proc(5): mount ID, parent ID, major:minor, root, mount point, options,
                # optional fields, "-", file system type, source, super options.
                left, _, right = line.partition(" - ")
                point = left.split()[4].replace("\\040", " ")
                if (real == point or real.startswith(point.rstrip("/") + "/")) and len(
                    point
                ) >= len(best):
                    best, kind = point, right.split()[0]
    except (OSError, IndexError):
        return None
    return kind


def memory_directory(candidates: tuple[str, ...] = ("/tmp", "/dev/shm")) -> str | None:  # noqa: S108
    """Return the first of `candidates` that is a writable directory on a memory file system."""
    for candidate in candidates:
        if (
            os.path.isdir(candidate)
            and os.access(candidate, os.W_OK)
            and filesystem_type(candidate) in MEMORY_FILESYSTEMS
        ):
            return candidate
    return None


def _words(data: dict[str, list[Any]]) -> RecognisedPage:
    """Rebuild the page's text from Tesseract's TSV rows: words joined by spaces, lines by
    newlines, and a blank line between paragraphs."""
    lines: list[str] = []
    confidences: list[float] = []
    last_line: tuple[int, ...] | None = None
    last_paragraph: tuple[int, ...] | None = None
    for i, word in enumerate(data["text"]):
        word = str(word).strip()
        if int(data["level"][i]) != 5 or not word:
            continue
        paragraph = (int(data["block_num"][i]), int(data["par_num"][i]))
        line = (*paragraph, int(data["line_num"][i]))
        if line != last_line:
            if last_paragraph is not None and paragraph != last_paragraph:
                lines.append("")
            lines.append(word)
        else:
            lines[-1] += " " + word
        last_line, last_paragraph = line, paragraph
        confidences.append(max(0.0, min(100.0, float(data["conf"][i]))))
    return RecognisedPage("\n".join(lines), tuple(confidences))


class TesseractEngine:
    """Tesseract, the program Debian's `tesseract-ocr` installs, driven through pytesseract.

    Raises `ExtractionError` (`UNAVAILABLE`) on construction when Python's temporary directory
    is not on a memory file system; **on a disk, pytesseract's temporary files would put the
    page and its text there in the clear.**
    """

    name = "tesseract"

    def __init__(self) -> None:
        directory = tempfile.gettempdir()
        if filesystem_type(directory) not in MEMORY_FILESYSTEMS:
            raise ExtractionError(
                FailureKind.UNAVAILABLE,
                "OCR refused: its temporary directory is not a memory file system (tmpfs)",
            )
        self._version: str | None = None
        self._languages: frozenset[str] | None = None

    def version(self) -> str:
        """Return Tesseract's version (`5.3.0`). Raises `ExtractionError` if it is absent."""
        if self._version is None:
            import pytesseract

            try:
                self._version = str(pytesseract.get_tesseract_version())
            except (pytesseract.TesseractNotFoundError, OSError):
                raise ExtractionError(
                    FailureKind.UNAVAILABLE, "OCR unavailable: tesseract is not installed"
                ) from None
        return self._version

    def languages(self) -> frozenset[str]:
        """Return the languages Tesseract has models for (`osd` is not one)."""
        if self._languages is None:
            import pytesseract

            self.version()
            self._languages = frozenset(pytesseract.get_languages()) - {"osd"}
        return self._languages

    def script(self, page: PageImage) -> str | None:
        """Return the script Tesseract's orientation and script detection sees (`Latin`,
        `Cyrillic`, ...), or None when the page has too little text to tell."""
        import pytesseract

        try:
            osd = pytesseract.image_to_osd(
                self._image(page), config="--psm 0", output_type=pytesseract.Output.DICT
            )
        except pytesseract.TesseractError:
            return None  # "Too few characters": nothing to decide on
        script = osd.get("script")
        return str(script) if script else None

    def recognise(self, page: PageImage, languages: tuple[str, ...]) -> RecognisedPage:
        """Read `page` in `languages`. Raises `ExtractionError` if Tesseract fails."""
        import pytesseract

        try:
            data = pytesseract.image_to_data(
                self._image(page),
                lang="+".join(languages),
                config=_CONFIG,
                output_type=pytesseract.Output.DICT,
            )
        except pytesseract.TesseractError as exc:
            if isinstance(exc.status, int) and exc.status < 0:  # killed: its memory limit, say
                raise ExtractionError(
                    FailureKind.CRASHED, f"OCR crashed: tesseract killed by signal {-exc.status}"
                ) from None
            raise ExtractionError(
                FailureKind.MALFORMED, f"OCR failed: tesseract exit status {exc.status}"
            ) from None
        return _words(data)

    @staticmethod
    def _image(page: PageImage) -> Any:
        from PIL import Image

        image = Image.frombytes("L", (page.width, page.height), page.pixels)
        # Written for Tesseract as binary PGM: no compression to pay for, read as is.
        image.format = "PPM"
        return image
