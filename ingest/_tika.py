"""What Tika's output means, shared by both Tika adapters (no Tika library imported here)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from ingest.languages import canonical_language
from ingest.ports import ExtractionError, FailureKind

__all__ = [
    "check_text",
    "classify_failure",
    "interpret",
    "memory_error",
    "mime_type",
    "select_metadata",
    "text_limit",
]

RawMetadata = Mapping[str, str | Sequence[str]]

# Tika metadata keys (Dublin Core, XMP paged text, HTTP) for the few fields we keep, in order of
# preference. Everything else Tika reports is dropped: it can quote the document.
_SELECTED: dict[str, tuple[str, ...]] = {
    "title": ("dc:title", "pdf:docinfo:title", "title"),
    "author": ("dc:creator", "meta:author", "pdf:docinfo:creator", "Author", "author"),
    "created": ("dcterms:created", "meta:creation-date", "Creation-Date"),
    "page_count": ("xmpTPg:NPages", "meta:page-count", "Page-Count"),
    "content_type": ("Content-Type",),
}
_MAX_VALUE_CHARS = 500
# Java object identities ("PDFParser@3d0cbf6e") and package prefixes say nothing to a person.
_NOISE = re.compile(r"@[0-9a-f]{6,}|\b(?:[a-z]+\.){2,}(?=[A-Z])")


def _first(meta: RawMetadata, key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value[0] if value else None


def select_metadata(meta: RawMetadata) -> dict[str, str]:
    """Pick title, author, created, page count and content type out of Tika's metadata."""
    selected: dict[str, str] = {}
    for name, keys in _SELECTED.items():
        for key in keys:
            value = _first(meta, key)
            if value and value.strip():
                selected[name] = value.strip()[:_MAX_VALUE_CHARS]
                break
    return selected


# The vault stores an extraction's MIME type and language in the clear (docs/ingest.md), and
# both come from software that has just parsed a hostile file (a parser process, a Tika
# server): only their expected shapes are taken, never free text.
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")  # RFC 6838
UNKNOWN_MIME: Final = "application/octet-stream"


def shaped_mime(value: object) -> str:
    """Return `value` if it is a `type/subtype` name, else `application/octet-stream`."""
    return value if isinstance(value, str) and _MIME.fullmatch(value) else UNKNOWN_MIME


def shaped_language(value: object) -> str | None:
    """Return `value` if it is a primary language subtag of `ingest.languages`, else None."""
    if not isinstance(value, str):
        return None
    # Exactly as `ingest.language` writes it: lower case, no script or region, not deprecated.
    return value if canonical_language(value) == value and "-" not in value else None


def mime_type(meta: RawMetadata) -> str:
    """Return the detected MIME type without parameters (`text/plain`, not `; charset=...`)."""
    value = _first(meta, "Content-Type") or UNKNOWN_MIME
    return shaped_mime(value.split(";", 1)[0].strip().lower())


def _warnings(meta: RawMetadata) -> list[str]:
    found: list[str] = []
    for key in ("X-TIKA:warning", "X-TIKA:EXCEPTION:warn", "X-TIKA:EXCEPTION:container_exception"):
        value = meta.get(key)
        if isinstance(value, str):
            found.append(value)
        elif value:
            found.extend(value)
    return found


def check_text(text: str, meta: RawMetadata, max_text_chars: int) -> None:
    """Refuse output that only looks like success. Raises `ExtractionError`.

    Tika reports an encrypted PDF it cannot open as a warning with empty text, and
    `extract_*_to_string` cuts text at its maximum length without saying so; the caller asks for
    one character more than the limit, so a longer text here means the limit was exceeded.
    """
    for warning in _warnings(meta):
        if "EncryptedDocumentException" in warning:
            kind = "PDF" if mime_type(meta) == "application/pdf" else "document"
            raise ExtractionError(FailureKind.ENCRYPTED, f"encrypted {kind}: no password")
    if len(text) > max_text_chars:
        raise text_limit(max_text_chars)


def text_limit(max_text_chars: int) -> ExtractionError:
    """The error for text longer than `max_text_chars`."""
    return ExtractionError(
        FailureKind.TEXT_LIMIT, f"text exceeds the {max_text_chars:,}-character limit"
    )


def memory_error(limit_bytes: int) -> ExtractionError:
    """The error for a parser that hit its memory limit of `limit_bytes`."""
    return ExtractionError(
        FailureKind.MEMORY, f"the parser ran out of its {limit_bytes >> 20:,} MiB memory limit"
    )


def classify_failure(message: str) -> ExtractionError:
    """Turn a Tika exception message into an `ExtractionError` a person can read."""
    if "EncryptedDocumentException" in message or "encrypted" in message.lower():
        return ExtractionError(FailureKind.ENCRYPTED, "encrypted document: no password")
    if "OutOfMemoryError" in message:
        return ExtractionError(FailureKind.MEMORY, "the parser ran out of memory")
    if "must have > 0 bytes" in message:
        return ExtractionError(FailureKind.EMPTY, "empty file")
    cleaned = _NOISE.sub("", message).strip()
    cleaned = cleaned.removeprefix('ParseError("').removesuffix('")')
    return ExtractionError(FailureKind.MALFORMED, f"the parser refused the file: {cleaned[:300]}")


_PLAIN = ("text/plain", "text/csv")


def interpret(
    path: Path, text: str, meta: RawMetadata, max_text_chars: int
) -> tuple[str, dict[str, str], str]:
    """Return (MIME type, selected metadata, text) from Tika's answer for `path`.

    Raises `ExtractionError` as `check_text` does. Tika's UniversalEncodingDetector calls short
    or repetitive Spanish UTF-8 text GB18030 (measured: "declaración" came back as
    "declaraci贸n"). A file that decodes as strict UTF-8 and has non-ASCII bytes is UTF-8 beyond
    reasonable doubt, so for plain text its bytes win over the guess.
    """
    check_text("", meta, max_text_chars)  # encrypted, before anything else
    mime, selected = mime_type(meta), select_metadata(meta)
    content_type = (_first(meta, "Content-Type") or "").lower().replace(" ", "")
    if mime in _PLAIN and "charset=utf-8" not in content_type:
        budget = 4 * (max_text_chars + 1)  # UTF-8 takes at most 4 bytes a character
        with path.open("rb") as handle:
            raw = handle.read(budget + 1)
        if len(raw) > budget:
            raise text_limit(max_text_chars)
        if not raw.isascii():
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                check_text(decoded, {}, max_text_chars)
                selected["content_type"] = "text/plain; charset=UTF-8"
                return "text/plain", selected, decoded
    check_text(text, meta, max_text_chars)
    return mime, selected, text
