"""OCR of images and of PDF pages without text, in the parser process (docs/ingest.md, "OCR").

`Recogniser.apply` runs after Tika has parsed the file, in the same sandboxed process: it
decides which pages need OCR (an image and each of its TIFF pages; a PDF page with no text and
at least one image), checks the page and pixel limits from headers before any pixel is decoded,
decodes or renders each page to grayscale in memory, and hands the pixels to an
`ingest.OcrEngine` (in production the runner, `ingest.adapters._ocr_runner`). Nothing is
written to a disk here: the pages live in memory, the text goes back over the parser's pipe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ingest._tika import text_limit
from ingest.ports import ExtractionError, FailureKind, OcrEngine, OcrReport, PageImage

__all__ = [
    "DEFAULT_LANGUAGES",
    "IMAGE_TYPES",
    "OcrOptions",
    "Recogniser",
    "parse_languages",
    "report_from_header",
    "report_to_header",
]

IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/tiff", "image/webp"})
PDF: Final = "application/pdf"
DEFAULT_LANGUAGES: Final = ("spa", "eng")
# Scanned pages are rendered at the resolution Tesseract reads best (300 dpi; PDF units are
# 1/72 inch), lower only where the page would exceed the pixel limit.
RENDER_DPI: Final = 300
# ISO 639-1 (the item's language, as depositors and `ingest.detect_language` give it) to the
# names of Tesseract's models.
TESSERACT_LANGUAGES: Final = {
    "es": "spa", "en": "eng", "fr": "fra", "pt": "por", "de": "deu", "it": "ita", "ca": "cat",
    "eu": "eus", "gl": "glg", "nl": "nld", "ru": "rus", "uk": "ukr", "ar": "ara", "fa": "fas",
    "he": "heb", "el": "ell", "tr": "tur", "rw": "kin", "sw": "swa", "zh": "chi_sim",
}  # fmt: skip
# The script each model reads, as Tesseract's orientation and script detection names it.
SCRIPTS: Final = {
    "ara": "Arabic", "fas": "Arabic", "rus": "Cyrillic", "ukr": "Cyrillic", "heb": "Hebrew",
    "ell": "Greek", "chi_sim": "Han", "chi_tra": "Han", "jpn": "Japanese", "kor": "Hangul",
    "hin": "Devanagari",
}  # fmt: skip
_LANGUAGE: Final = re.compile(r"[a-z]{3}(?:_[a-z]{3,4})?")
_ENGINE: Final = re.compile(r"[a-z0-9_-]{1,32}")
_VERSION: Final = re.compile(r"[0-9A-Za-z.+_-]{1,32}")


def parse_languages(value: str) -> tuple[str, ...]:
    """Parse `spa+eng` into `("spa", "eng")`. Raises `ValueError` on a malformed code."""
    codes = tuple(code for code in value.strip().split("+") if code)
    if not codes or not all(_LANGUAGE.fullmatch(code) for code in codes):
        raise ValueError(f"OCR languages must look like spa+eng, not {value!r}")
    return codes


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """OCR for a parser pool: the engine's name (`ingest.adapters._ocr_runner.ENGINES`) and the
    languages to read when a file's own language is not known."""

    engine: str = "tesseract"
    languages: tuple[str, ...] = DEFAULT_LANGUAGES

    def __post_init__(self) -> None:
        parse_languages("+".join(self.languages))

    def argument(self) -> str:
        """The parser process's command-line form: `tesseract:spa+eng`."""
        return f"{self.engine}:{'+'.join(self.languages)}"

    @classmethod
    def from_argument(cls, value: str) -> OcrOptions:
        """Parse `argument()`'s form. Raises `ValueError`."""
        engine, _, languages = value.partition(":")
        return cls(engine, parse_languages(languages))


def report_to_header(report: OcrReport) -> dict[str, object]:
    """The report as the parser process sends it."""
    return {
        "engine": report.engine,
        "version": report.version,
        "languages": list(report.languages),
        "confidence": report.confidence,
        "pages": report.pages,
    }


def report_from_header(value: object) -> OcrReport | None:
    """Read a report the parser process sent; None if absent or not of the expected shapes.

    The vault records it in the clear, and it comes from a process that parsed a hostile
    file: only names, version numbers, language codes and numbers are taken, never free text.
    """
    if not isinstance(value, Mapping):
        return None
    engine, version = value.get("engine"), value.get("version")
    languages, confidence, pages = (
        value.get("languages"),
        value.get("confidence"),
        value.get("pages"),
    )
    if not (isinstance(engine, str) and _ENGINE.fullmatch(engine)):
        return None
    if not (isinstance(version, str) and _VERSION.fullmatch(version)):
        return None
    if not isinstance(languages, list) or not all(
        isinstance(code, str) and _LANGUAGE.fullmatch(code) for code in languages
    ):
        return None
    if not isinstance(confidence, int | float) or isinstance(confidence, bool):
        return None
    if not isinstance(pages, int) or isinstance(pages, bool) or pages < 0:
        return None
    if not math.isfinite(confidence):
        return None
    confidence = round(min(100.0, max(0.0, float(confidence))), 1)
    return OcrReport(engine, version, tuple(languages), confidence, pages)


def _pixel_error(size: tuple[int, int] | None, max_pixels: int) -> ExtractionError:
    what = f"an image of {size[0]:,} x {size[1]:,} pixels" if size else "an image"
    return ExtractionError(
        FailureKind.PIXEL_LIMIT,
        f"OCR refused: {what} over the {max_pixels:,}-pixel limit (a decompression bomb?)",
    )


def _page_error(pages: int, max_pages: int) -> ExtractionError:
    return ExtractionError(
        FailureKind.PAGE_LIMIT,
        f"OCR refused: {pages:,} pages to recognise, more than the {max_pages:,}-page limit; "
        "no page was recognised",
    )


def _malformed(what: str, exc: BaseException) -> ExtractionError:
    return ExtractionError(
        FailureKind.MALFORMED, f"OCR: the {what} cannot be decoded ({type(exc).__name__})"
    )


def _grey(image: Any) -> PageImage:
    """Flatten a decoded Pillow image onto white and make it 8-bit grayscale."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    grey = image.convert("L")
    return PageImage(grey.width, grey.height, grey.tobytes())


def image_pages(path: str, max_pages: int, max_pixels: int) -> Iterator[PageImage]:
    """Yield the pages of the image at `path` (a multi-page TIFF has many) as grayscale.

    Raises `ExtractionError`: `PAGE_LIMIT` or `PIXEL_LIMIT` before decoding, `MALFORMED` for
    an image the decoder refuses.
    """
    from PIL import Image

    # Pillow's own bomb check, a second line behind ours: it raises at twice this many pixels.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        image = Image.open(path)  # reads the header only
        count = int(getattr(image, "n_frames", 1))
    except Image.DecompressionBombError:
        raise _pixel_error(None, max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _malformed("image", exc) from None
    with image:
        if count > max_pages:
            raise _page_error(count, max_pages)
        for index in range(count):
            try:
                image.seek(index)
                width, height = image.size
                if width * height > max_pixels:
                    raise _pixel_error((width, height), max_pixels)
                image.load()
                page = _grey(image)
            except ExtractionError:
                raise
            except Image.DecompressionBombError:
                raise _pixel_error(image.size, max_pixels) from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise _malformed("image", exc) from None
            yield page


def _has_text(page: Any) -> bool:
    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        # Only a short count can be all blanks; reading a long page's text would cost more.
        return bool(count >= 32 or (count and textpage.get_text_range().strip()))
    finally:
        textpage.close()


def _pdf_scans(document: Any) -> list[int]:
    """Return the indexes of the pages that have images and no text layer.

    Images are looked for first: it is the cheaper test (measured on 500 text pages without
    images: 0.4 ms a page, against 1.5 ms to count the text), and a PDF of text alone, the
    common case, never pays for the second.
    """
    import pypdfium2.raw as pdfium_c

    scans = []
    for index in range(len(document)):
        page = document[index]
        try:
            images = page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,))
            if next(iter(images), None) is not None and not _has_text(page):
                scans.append(index)
        finally:
            page.close()
    return scans


def pdf_pages(path: str, max_pages: int, max_pixels: int) -> Iterator[PageImage]:
    """Yield the PDF's pages that need OCR, rendered to grayscale at up to `RENDER_DPI`.

    Raises `ExtractionError` (`PAGE_LIMIT` before any page is rendered; `MALFORMED`).
    """
    import pypdfium2

    # Opened here and read through the handle: pypdfium2 resolves a name it is given, and the
    # sandbox reaches the host's /tmp only through a descriptor (`_sandbox.visible`).
    handle = open(path, "rb")  # noqa: SIM115 - PDFium reads it until `document.close()`
    try:
        document = pypdfium2.PdfDocument(handle, autoclose=True)
    except pypdfium2.PdfiumError as exc:
        handle.close()
        raise _malformed("PDF", exc) from None
    try:
        scans = _pdf_scans(document)
        if len(scans) > max_pages:
            raise _page_error(len(scans), max_pages)
        for index in scans:
            page = document[index]
            try:
                width, height = page.get_size()
                # Never more pixels than the limit: a poster-sized page is read at lower dpi.
                scale = min(RENDER_DPI / 72, math.sqrt(max_pixels / max(width * height, 1.0)))
                bitmap = page.render(scale=scale, grayscale=True)
                image = bitmap.to_pil()
                grey = image.convert("L")
                yield PageImage(grey.width, grey.height, grey.tobytes())
            except pypdfium2.PdfiumError as exc:
                raise _malformed("PDF page", exc) from None
            finally:
                page.close()
    finally:
        document.close()


class Recogniser:
    """OCR for one parser process, through `engine` (see the module docstring)."""

    def __init__(self, engine: OcrEngine, options: OcrOptions) -> None:
        self.engine = engine
        self.options = options

    def languages(self, hint: str | None, first: PageImage) -> tuple[str, ...]:
        """Choose the languages for a file: the item's language where a model reads it; else
        the configured ones, narrowed by script detection on the first page when they are
        written in more than one script. Raises `ExtractionError` if no model is installed."""
        installed = self.engine.languages()
        if hint and TESSERACT_LANGUAGES.get(hint) in installed:
            return (TESSERACT_LANGUAGES[hint],)
        chosen = tuple(code for code in self.options.languages if code in installed)
        if not chosen:
            raise ExtractionError(
                FailureKind.UNAVAILABLE,
                f"OCR unavailable: no model for {'+'.join(self.options.languages)}",
            )
        if len({SCRIPTS.get(code, "Latin") for code in chosen}) > 1:
            script = self.engine.script(first)
            narrowed = tuple(code for code in chosen if SCRIPTS.get(code, "Latin") == script)
            chosen = narrowed or chosen
        return chosen

    def apply(
        self, request: Mapping[str, Any], path: str, mime: str, text: str
    ) -> tuple[str, OcrReport] | None:
        """Recognise what needs OCR in the file at `path`, which Tika read as `mime` and
        `text`; return the text with the recognised pages' text appended, and the report; None
        when the file has nothing to recognise. Raises `ExtractionError`."""
        max_pages = int(request.get("max_pages", 200))
        max_pixels = int(request.get("max_pixels", 50_000_000))
        max_chars = int(request["max_text_chars"])
        if mime in IMAGE_TYPES:
            pages = image_pages(path, max_pages, max_pixels)
        elif mime == PDF:
            pages = pdf_pages(path, max_pages, max_pixels)
        else:
            return None
        hint = request.get("language")
        parts = [text.strip()] if text.strip() else []
        size = len(text)
        confidences: list[float] = []
        languages: tuple[str, ...] = ()
        count = 0
        for page in pages:
            if not languages:
                languages = self.languages(hint if isinstance(hint, str) else None, page)
            result = self.engine.recognise(page, languages)
            count += 1
            confidences.extend(result.confidences)
            if result.text.strip():
                parts.append(result.text.strip())
                size += len(result.text) + 2
                if size > max_chars:
                    raise text_limit(max_chars)
        if count == 0:
            return None
        mean = sum(confidences) / len(confidences) if confidences else 0.0
        report = OcrReport(
            self.engine.name, self.engine.version(), languages, round(mean, 1), count
        )
        return "\n\n".join(parts), report
