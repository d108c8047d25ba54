"""The Extractor port: what every text extractor takes, returns and raises."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "Extraction",
    "ExtractionError",
    "Extractor",
    "FailureKind",
    "Limits",
    "OcrEngine",
    "OcrReport",
    "PageImage",
    "RecognisedPage",
]


class FailureKind(enum.StrEnum):
    """Why an extraction failed; stable names a job record and a test can compare."""

    EMPTY = "empty"  # a 0-byte file
    ENCRYPTED = "encrypted"  # needs a password we do not have
    MALFORMED = "malformed"  # the parser refused the content
    TIMEOUT = "timeout"  # wall-clock limit reached; the parser was killed
    TEXT_LIMIT = "text_limit"  # more text than `Limits.max_text_chars`
    MEMORY = "memory"  # the parser ran out of its memory limit
    ZIP_BOMB = "zip_bomb"  # a container inflates too far or too much
    NESTING = "nesting"  # archives nested deeper than `Limits.max_nesting`
    CRASHED = "crashed"  # the parser process died
    UNAVAILABLE = "unavailable"  # the extraction service could not be reached
    PAGE_LIMIT = "page_limit"  # more pages to recognise (OCR) than `Limits.max_pages`
    PIXEL_LIMIT = "pixel_limit"  # an image larger than `Limits.max_pixels` (decompression bomb)


class ExtractionError(Exception):
    """Extraction failed; `reason` is a sentence a custodian can read, `kind` a stable name.

    Raised for every failure, including limits: text cut short is never returned as success.
    """

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def __repr__(self) -> str:
        return f"ExtractionError({self.kind.value!r}, {self.reason!r})"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one extraction. The defaults suit documents of a few hundred pages."""

    timeout_s: float = 60.0
    max_text_chars: int = 5_000_000
    # Private writable memory of the parser process (RLIMIT_DATA; see docs/ingest.md for why not
    # RLIMIT_AS). The parser's own baseline is ~150 MB.
    max_memory_bytes: int = 1 << 30
    # Archives inside the container (a zip in a DOCX is level 1).
    max_nesting: int = 3
    # Apache POI's ZipSecureFile refuses entries that inflate more than 100:1 (MIN_INFLATE_RATIO
    # 0.01); we apply the same bound before the parser sees the file.
    max_compression_ratio: float = 100.0
    max_unpacked_bytes: int = 1 << 30
    # Members in one archive; a central directory of millions would exhaust memory by itself.
    max_zip_members: int = 10_000
    # OCR (docs/ingest.md, "OCR"): pages recognised in one file, and pixels in one page or image,
    # checked from the file's header before any pixel is decoded. A 1-bit PNG of 100,000 x
    # 100,000 pixels is a few kilobytes on disk and 10 GB decoded. A4 at 300 dpi is 8.7 Mpixels.
    max_pages: int = 200
    max_pixels: int = 50_000_000

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.max_text_chars <= 0 or self.max_memory_bytes <= 0:
            raise ValueError("limits must be positive")
        if self.max_nesting < 0 or self.max_compression_ratio < 1 or self.max_unpacked_bytes < 1:
            raise ValueError("limits must be positive")
        if self.max_zip_members < 1 or self.max_pages < 1 or self.max_pixels < 1:
            raise ValueError("limits must be positive")


@dataclass(frozen=True, slots=True)
class OcrReport:
    """How an extraction's text was recognised: a fact the vault records in the clear.

    `languages` are the engine's codes (`spa`, `eng`); `confidence` is the mean word confidence
    (0-100) over the recognised pages, 0.0 when no word was found; `pages` counts the pages or
    images recognised.
    """

    engine: str
    version: str
    languages: tuple[str, ...]
    confidence: float
    pages: int


@dataclass(frozen=True, slots=True)
class Extraction:
    """Text and a small selected set of metadata from one file.

    `metadata` keys are among `title`, `author`, `created`, `page_count`, `content_type`;
    never the whole parser output (it can repeat the document's words, and it is sealed anyway).
    `language` is an ISO 639-1 code such as `es`, or None when the text is too short to tell.
    """

    text: str
    mime_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    language: str | None = None
    # Set when some or all of `text` came from OCR; None for text the file itself held.
    ocr: OcrReport | None = None


@runtime_checkable
class Extractor(Protocol):
    """Extract text from a plaintext file. Implementations are safe to call from many threads."""

    def extract(self, path: Path, limits: Limits, *, language: str | None = None) -> Extraction:
        """Extract `path` within `limits`. Raises `ExtractionError` on any failure.

        `language` is what the depositor said the document's language is (ISO 639-1), a hint
        for OCR; an extractor without OCR ignores it.
        """
        ...

    def check(self, timeout_s: float) -> None:
        """Raise `ExtractionError` (`UNAVAILABLE`) if this extractor cannot take work now: a
        server that does not answer within `timeout_s`, or a closed extractor. In-process
        extractors start their parsers on demand, so open ones always can. For readiness."""
        ...

    def close(self) -> None:
        """Release worker processes or connections. Idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class PageImage:
    """One page to recognise: 8-bit grayscale pixels, row by row (`width * height` bytes)."""

    width: int
    height: int
    pixels: bytes

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or len(self.pixels) != self.width * self.height:
            raise ValueError("pixels must hold width x height bytes")


@dataclass(frozen=True, slots=True)
class RecognisedPage:
    """What an OCR engine read on one page: its text and the confidence of each word (0-100)."""

    text: str
    confidences: tuple[float, ...] = ()


@runtime_checkable
class OcrEngine(Protocol):
    """An OCR engine. Runs inside the parser's sandbox (`ingest.adapters._ocr_runner`).

    Implementations read nothing but the page they are given and write nothing to a disk.
    """

    name: str

    def version(self) -> str:
        """Return the engine's version. Raises `ExtractionError` (`UNAVAILABLE`) if it is absent."""
        ...

    def languages(self) -> frozenset[str]:
        """Return the language codes the engine has models for."""
        ...

    def script(self, page: PageImage) -> str | None:
        """Return the script `page` is written in (`Latin`, `Cyrillic`, ...), or None."""
        ...

    def recognise(self, page: PageImage, languages: tuple[str, ...]) -> RecognisedPage:
        """Read `page` in `languages`, correcting its rotation. Raises `ExtractionError`."""
        ...
