"""Extraction of text and metadata from deposited files, with limits for hostile input.

The names below load on first use (PEP 562): the parser processes run
`ingest.adapters._tika_child`, and every module imported there enlarges the process that
Tika forks for each of its external-tool probes (see docs/ingest.md, "Speed").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest._lazy import exports

if TYPE_CHECKING:
    from ingest.containers import check_container
    from ingest.language import detect_language
    from ingest.languages import canonical_language, known_languages
    from ingest.ocr import OcrOptions, parse_languages
    from ingest.plaintext import plaintext_file
    from ingest.ports import (
        Extraction,
        ExtractionError,
        Extractor,
        FailureKind,
        Limits,
        OcrEngine,
        OcrReport,
        PageImage,
        RecognisedPage,
    )
    from ingest.scratch import ScratchError, memory_dir

__all__ = [
    "Extraction",
    "ExtractionError",
    "Extractor",
    "FailureKind",
    "Limits",
    "OcrEngine",
    "OcrOptions",
    "OcrReport",
    "PageImage",
    "RecognisedPage",
    "ScratchError",
    "canonical_language",
    "check_container",
    "detect_language",
    "known_languages",
    "memory_dir",
    "parse_languages",
    "plaintext_file",
]

_HOMES = {
    "Extraction": "ingest.ports",
    "ExtractionError": "ingest.ports",
    "Extractor": "ingest.ports",
    "FailureKind": "ingest.ports",
    "Limits": "ingest.ports",
    "OcrEngine": "ingest.ports",
    "OcrOptions": "ingest.ocr",
    "OcrReport": "ingest.ports",
    "PageImage": "ingest.ports",
    "RecognisedPage": "ingest.ports",
    "parse_languages": "ingest.ocr",
    "canonical_language": "ingest.languages",
    "check_container": "ingest.containers",
    "ScratchError": "ingest.scratch",
    "detect_language": "ingest.language",
    "known_languages": "ingest.languages",
    "memory_dir": "ingest.scratch",
    "plaintext_file": "ingest.plaintext",
}


__getattr__ = exports("ingest", _HOMES)
