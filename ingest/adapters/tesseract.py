"""Tesseract OCR through `pytesseract`: the default `ingest.OcrEngine`.

Runs in the OCR runner (`ingest.adapters._ocr_runner`), never in a server or worker process.
pytesseract hands Tesseract the page as a temporary image file and reads its answer from
another; both hold a survivor's words in the clear. The engine therefore refuses to run unless
Python's temporary directory is on a memory file system (tmpfs or ramfs, by its statfs(2)
type: `ingest.scratch.memory_dir`): the runner points it at the sandbox's private tmpfs
`/tmp`, or at `/dev/shm` where there is no sandbox. pytesseract deletes both files after each
call; the directory vanishes with the sandbox anyway.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Final

from ingest.ports import ExtractionError, FailureKind, PageImage, RecognisedPage
from ingest.scratch import ScratchError, memory_dir

__all__ = ["THREADS", "TesseractEngine", "memory_directory"]

# --psm 1: automatic page segmentation with orientation and script detection, so a page
# scanned upside down or sideways is read the right way up (measured: --psm 3 read a page
# turned by 90 degrees as nonsense). --oem 1: the LSTM engine, the only one Debian's models hold.
_CONFIG: Final = "--psm 1 --oem 1"
# Tesseract's own threads (OpenMP) cost more than they save on a shared machine (measured: one
# page 5.6 s with its default threads, 2.4 s with one, while other work ran); the runner sets
# OMP_THREAD_LIMIT to this for the programs it starts.
THREADS: Final = "1"


def memory_directory(candidates: tuple[str, ...] = ("/tmp", "/dev/shm")) -> str | None:  # noqa: S108
    """Return the first of `candidates` that is a writable directory on a memory file system."""
    for candidate in candidates:
        try:
            return str(memory_dir(Path(candidate)))
        except ScratchError:
            continue
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
        try:
            memory_dir(Path(tempfile.gettempdir()))
        except ScratchError:
            raise ExtractionError(
                FailureKind.UNAVAILABLE,
                "OCR refused: its temporary directory is not a memory file system (tmpfs)",
            ) from None
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
