"""Extraction of text and metadata from deposited files, with limits for hostile input."""

from ingest.containers import check_container
from ingest.language import detect_language
from ingest.plaintext import plaintext_file
from ingest.ports import Extraction, ExtractionError, Extractor, FailureKind, Limits

__all__ = [
    "Extraction",
    "ExtractionError",
    "Extractor",
    "FailureKind",
    "Limits",
    "check_container",
    "detect_language",
    "plaintext_file",
]
