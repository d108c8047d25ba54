"""Reading Tika's answer: selected metadata, MIME type, and output that only looks like success."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ExtractionError, FailureKind
from ingest._tika import (
    classify_failure,
    interpret,
    mime_type,
    select_metadata,
    shaped_language,
    shaped_mime,
)


def test_only_selected_metadata_is_kept() -> None:
    raw = {
        "dc:title": ["Testimonio"],
        "dc:creator": "Equipo",
        "dcterms:created": ["2024-03-12T10:15:00Z"],
        "xmpTPg:NPages": ["7"],
        "Content-Type": ["application/pdf"],
        "pdf:unmappedUnicodeCharsPerPage": ["0", "0"],
        "X-TIKA:content": "the whole text",
    }
    assert select_metadata(raw) == {
        "title": "Testimonio",
        "author": "Equipo",
        "created": "2024-03-12T10:15:00Z",
        "page_count": "7",
        "content_type": "application/pdf",
    }


def test_mime_type_drops_parameters() -> None:
    assert mime_type({"Content-Type": ["Text/Plain; charset=ISO-8859-1"]}) == "text/plain"
    assert mime_type({}) == "application/octet-stream"


@pytest.mark.parametrize(
    "claimed",
    [
        "La testigo Rosa Mamani declaró",  # text where a type belongs: stored in the clear
        "text/plain extra words",
        "application/" + "x" * 200,
        "/plain",
    ],
)
def test_a_mime_type_is_taken_only_in_its_shape(claimed: str) -> None:
    assert mime_type({"Content-Type": [claimed]}) == "application/octet-stream"
    assert shaped_mime(claimed) == "application/octet-stream"


def test_a_language_is_taken_only_as_a_code() -> None:
    assert [shaped_language(v) for v in ("es", "quz", None, "Rosa Mamani", "ES", 7)] == [
        "es",
        "quz",
        None,
        None,
        None,
        None,
    ]


def test_encrypted_warning_is_a_failure(tmp_path: Path) -> None:
    meta = {
        "Content-Type": ["application/pdf"],
        "X-TIKA:warning": ["EncryptedDocumentException: Unable to process: document is encrypted"],
    }
    with pytest.raises(ExtractionError) as caught:
        interpret(tmp_path / "unused", "", meta, 100)
    assert caught.value.kind is FailureKind.ENCRYPTED
    assert caught.value.reason == "encrypted PDF: no password"


def test_text_cut_at_the_limit_is_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    meta = {"Content-Type": ["application/pdf"]}
    assert interpret(path, "a" * 100, meta, 100)[2] == "a" * 100
    with pytest.raises(ExtractionError) as caught:
        interpret(path, "a" * 101, meta, 100)
    assert caught.value.kind is FailureKind.TEXT_LIMIT


def test_utf8_file_wins_over_a_wrong_charset_guess(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("declaración".encode())
    meta = {"Content-Type": ["text/plain; charset=GB18030"]}
    mime, metadata, text = interpret(path, "declaraci贸n", meta, 100)
    assert (mime, text) == ("text/plain", "declaración")
    assert metadata["content_type"] == "text/plain; charset=UTF-8"


def test_latin1_file_keeps_tikas_decoding(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("declaración".encode("latin-1"))
    meta = {"Content-Type": ["text/plain; charset=ISO-8859-1"]}
    assert interpret(path, "declaración", meta, 100)[2] == "declaración"


def test_oversized_plain_text_fails_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("ñ".encode("latin-1") * 500)
    meta = {"Content-Type": ["text/plain; charset=ISO-8859-1"]}
    with pytest.raises(ExtractionError) as caught:
        interpret(path, "ñ" * 11, meta, 10)
    assert caught.value.kind is FailureKind.TEXT_LIMIT


@pytest.mark.parametrize(
    ("message", "kind", "reason"),
    [
        (
            'ParseError("Parse error occurred : TIKA-198: Illegal IOException from '
            'org.apache.tika.parser.pdf.PDFParser@3d0cbf6e")',
            FailureKind.MALFORMED,
            "the parser refused the file: Parse error occurred : TIKA-198: Illegal IOException "
            "from PDFParser",
        ),
        (
            "JniError(JavaException)\njava.lang.OutOfMemoryError: Could not commit",
            FailureKind.MEMORY,
            "the parser ran out of memory",
        ),
        (
            "org.apache.tika.exception.EncryptedDocumentException: Unable to process",
            FailureKind.ENCRYPTED,
            "encrypted document: no password",
        ),
        (
            'ParseError("Parse error occurred : InputStream must have > 0 bytes")',
            FailureKind.EMPTY,
            "empty file",
        ),
    ],
)
def test_failures_read_well(message: str, kind: FailureKind, reason: str) -> None:
    error = classify_failure(message)
    assert (error.kind, error.reason) == (kind, reason)
