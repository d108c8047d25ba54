"""The Extractor contract, run against iscc-tika always and a Tika server when one is configured."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import Extraction, ExtractionError, Extractor, FailureKind, Limits, OcrOptions
from ingest.adapters import NativeTikaExtractor, TikaServerExtractor
from tests import corpus
from tests.services import unavailable

SELECTED_KEYS = {"title", "author", "created", "page_count", "content_type"}


@pytest.fixture(scope="module", params=["tika-native", "tika-native-ocr", "tika-server"])
def extractor(request: pytest.FixtureRequest) -> Iterator[Extractor]:
    """Every adapter, built as the composition root would build it (OCR on is the default)."""
    if request.param.startswith("tika-native"):
        ocr = OcrOptions() if request.param.endswith("-ocr") else None
        if ocr is not None and shutil.which("tesseract") is None:
            pytest.skip("needs Debian's tesseract-ocr (make tools)")
        with NativeTikaExtractor(workers=1, ocr=ocr) as native:
            yield native
        return
    url = os.environ.get("TVAULT_TEST_TIKA_URL")
    if not url:
        unavailable("tika_server", "TVAULT_TEST_TIKA_URL is not set")
    with TikaServerExtractor(url) as server:
        yield server


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extract(
    extractor: Extractor, path: Path, limits: Limits | None = None, language: str | None = None
) -> Extraction:
    before = _digest(path)
    try:
        return extractor.extract(path, limits or Limits(), language=language)
    finally:
        # The deposit stays intact whatever the parser does with it.
        assert _digest(path) == before


def _fails(extractor: Extractor, path: Path, limits: Limits | None = None) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        _extract(extractor, path, limits)
    assert caught.value.reason, "a failure must carry a readable reason"
    return caught.value


def test_an_open_extractor_can_take_work_and_a_closed_one_cannot(
    extractor: Extractor,
) -> None:
    extractor.check(2.0)
    # A fresh one of the same kind, closed: the module's shared one stays open for the others.
    fresh = (
        NativeTikaExtractor(workers=1)
        if isinstance(extractor, NativeTikaExtractor)
        else TikaServerExtractor(os.environ["TVAULT_TEST_TIKA_URL"])
    )
    fresh.close()
    with pytest.raises(ExtractionError) as caught:
        fresh.check(2.0)
    assert caught.value.kind is FailureKind.UNAVAILABLE


def test_is_an_extractor(extractor: Extractor) -> None:
    assert isinstance(extractor, Extractor)


def test_pdf(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.pdf(tmp_path), language="es")
    assert result.ocr is None  # a text layer needs no OCR, whoever extracts
    assert result.mime_type == "application/pdf"
    assert "declaración" in result.text and "detención" in result.text
    assert "truth commission" in result.text
    assert result.metadata["page_count"] == "2"
    assert result.metadata["title"] == corpus.TITLE
    assert result.metadata["author"] == corpus.AUTHOR
    assert result.metadata["created"].startswith("2024-03-12")
    assert set(result.metadata) <= SELECTED_KEYS


def test_docx(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.docx(tmp_path, paragraphs=(corpus.SPANISH,)))
    assert result.mime_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert "tortura" in result.text and "declaración" in result.text
    assert result.metadata["title"] == corpus.TITLE
    assert result.language == "es"


def test_odt(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.odt(tmp_path, paragraphs=(corpus.ENGLISH,)))
    assert result.mime_type == "application/vnd.oasis.opendocument.text"
    assert "arbitrary detention" in result.text
    assert result.metadata["author"] == corpus.AUTHOR
    assert result.language == "en"


def test_xlsx(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.xlsx(tmp_path))
    assert result.mime_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "Fecha de detención" in result.text and "Police station 3" in result.text


def test_html(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.html(tmp_path, paragraphs=(corpus.ENGLISH,)))
    assert result.mime_type == "text/html"
    assert "clandestine centre" in result.text
    assert "<p>" not in result.text
    assert result.metadata["title"] == corpus.TITLE
    assert result.language == "en"


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_plain_text(extractor: Extractor, tmp_path: Path, encoding: str) -> None:
    result = _extract(extractor, corpus.text(tmp_path, encoding=encoding))
    assert result.mime_type == "text/plain"
    # Latin-1 decoded as UTF-8 would turn these into replacement characters.
    for word in ("declaración", "detención", "tortura", "Según"):
        assert word in result.text
    assert result.language == "es"


def test_email_with_attachment(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.eml(tmp_path))
    assert result.mime_type == "message/rfc822"
    assert "The witness statement" in result.text  # the body
    assert "La declaración del testigo" in result.text  # the attached DOCX
    assert result.metadata["title"] == "Testimonio 17: declaración"


def test_extension_that_lies(extractor: Extractor, tmp_path: Path) -> None:
    result = _extract(extractor, corpus.pdf_named_docx(tmp_path))
    assert result.mime_type == "application/pdf"
    assert "detención arbitraria" in result.text


def test_zip_bomb_docx(extractor: Extractor, tmp_path: Path) -> None:
    error = _fails(extractor, corpus.zip_bomb_docx(tmp_path))
    assert error.kind is FailureKind.ZIP_BOMB
    assert "zip bomb" in error.reason


def test_nested_archives(extractor: Extractor, tmp_path: Path) -> None:
    path = corpus.nested_docx(tmp_path, depth=3)
    assert "declaración" in _extract(extractor, path, Limits(max_nesting=3)).text
    error = _fails(extractor, path, Limits(max_nesting=2))
    assert error.kind is FailureKind.NESTING
    assert error.reason == "archives nested more than 2 levels deep"


def test_malformed_pdf(extractor: Extractor, tmp_path: Path) -> None:
    assert _fails(extractor, corpus.malformed_pdf(tmp_path)).kind is FailureKind.MALFORMED


def test_empty_file(extractor: Extractor, tmp_path: Path) -> None:
    error = _fails(extractor, corpus.empty(tmp_path))
    assert error.kind is FailureKind.EMPTY
    assert error.reason == "empty file"


def test_encrypted_pdf(extractor: Extractor, tmp_path: Path) -> None:
    error = _fails(extractor, corpus.encrypted_pdf(tmp_path))
    assert error.kind is FailureKind.ENCRYPTED
    assert error.reason == "encrypted PDF: no password"


def test_text_over_the_limit_is_a_failure(extractor: Extractor, tmp_path: Path) -> None:
    path = corpus.long_text(tmp_path, 5_000)
    assert len(_extract(extractor, path, Limits(max_text_chars=10_000)).text) >= 5_000
    error = _fails(extractor, path, Limits(max_text_chars=1_000))
    assert error.kind is FailureKind.TEXT_LIMIT
    assert error.reason == "text exceeds the 1,000-character limit"


def test_text_exactly_at_the_limit_is_whole(extractor: Extractor, tmp_path: Path) -> None:
    body = "declaración " * 100
    path = corpus.text(tmp_path, content=body)
    length = len(_extract(extractor, path).text)
    assert _extract(extractor, path, Limits(max_text_chars=length)).text.strip() == body.strip()


def test_bomb_past_the_container_check_still_fails(extractor: Extractor, tmp_path: Path) -> None:
    # With our zip check loosened, the parser's own defences and the text limit must still stop
    # it: the job fails, it is never a success with text cut short.
    loose = Limits(max_compression_ratio=1e9, max_unpacked_bytes=1 << 40, max_text_chars=100_000)
    error = _fails(extractor, corpus.zip_bomb_docx(tmp_path), loose)
    assert error.kind in {FailureKind.MALFORMED, FailureKind.TEXT_LIMIT}


def test_still_works_after_hostile_files(extractor: Extractor, tmp_path: Path) -> None:
    for make in (corpus.malformed_pdf, corpus.encrypted_pdf, corpus.zip_bomb_docx):
        with pytest.raises(ExtractionError):
            extractor.extract(make(tmp_path), Limits())
    assert "tortura" in extractor.extract(corpus.docx(tmp_path), Limits()).text


def test_short_repetitive_utf8_is_not_mistaken_for_another_charset(
    extractor: Extractor, tmp_path: Path
) -> None:
    # Tika's own detector calls this GB18030 and returns "declaraci贸n".
    result = _extract(extractor, corpus.text(tmp_path, content="declaración " * 100))
    assert result.text.split() == ["declaración"] * 100
    assert result.mime_type == "text/plain"
