"""OCR in the parser process: what gets recognised, how well, and hostile images.

Pages are generated here (`tests.scans`); accuracy is the character error rate (CER) against
the text that was rendered: at most 3 % on clean pages, 10 % on degraded ones (turned,
skewed, blurred, noised). Each test keeps to a page or two: Tesseract takes ~1-3 s a page.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from ingest import Extraction, ExtractionError, FailureKind, Limits, OcrOptions
from ingest.adapters import NativeTikaExtractor
from tests import corpus, scans

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="needs Debian's tesseract-ocr (make tools)"
)

CLEAN_CER = 0.03
DEGRADED_CER = 0.10


@pytest.fixture(scope="module")
def ocr() -> Iterator[NativeTikaExtractor]:
    """The native extractor with OCR on, as the composition root builds it by default."""
    with NativeTikaExtractor(workers=1, ocr=OcrOptions()) as extractor:
        yield extractor


def _extract(
    extractor: NativeTikaExtractor, path: Path, limits: Limits | None = None, **hint: str
) -> Extraction:
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        return extractor.extract(path, limits or Limits(), **hint)
    finally:
        # The deposit stays intact whatever OCR does with it.
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def _fails(extractor: NativeTikaExtractor, path: Path, limits: Limits | None = None) -> str:
    with pytest.raises(ExtractionError) as caught:
        _extract(extractor, path, limits)
    assert caught.value.reason
    return caught.value.kind


def test_a_clean_spanish_scan_is_read(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    path = scans.save(scans.render(scans.SPANISH), tmp_path / "scan.png")
    result = _extract(ocr, path)
    assert result.mime_type == "image/png"
    assert scans.cer(scans.SPANISH, result.text) <= CLEAN_CER
    assert "declaró" in result.text and "niño" in result.text
    assert result.language == "es"
    assert result.ocr is not None
    assert result.ocr.engine == "tesseract" and result.ocr.version.startswith(("4.", "5."))
    assert result.ocr.languages == ("spa", "eng") and result.ocr.pages == 1
    assert result.ocr.confidence > 80
    # OCR on leaves the parser process barred from starting programs: only its runner may.
    assert ocr.spawn_blocked()


def test_a_clean_english_jpeg_is_read(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    path = scans.save(scans.render(scans.ENGLISH), tmp_path / "scan.jpg", quality=85)
    result = _extract(ocr, path, language="en")
    assert result.mime_type == "image/jpeg"
    assert scans.cer(scans.ENGLISH, result.text) <= CLEAN_CER
    # The item's own language decides the model.
    assert result.ocr is not None and result.ocr.languages == ("eng",)


def test_a_degraded_spanish_webp_is_read(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    page = scans.degrade(scans.render(scans.SPANISH), turn=90)
    path = scans.save(page, tmp_path / "photo.webp", lossless=True)
    result = _extract(ocr, path)
    assert result.mime_type == "image/webp"
    # Turned a quarter: read the right way up, or this would be nonsense.
    assert scans.cer(scans.SPANISH, result.text) <= DEGRADED_CER


def test_every_page_of_a_tiff_is_read(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    upside_down = scans.degrade(scans.render(scans.ENGLISH), turn=180)
    clean = scans.render(scans.SPANISH)
    path = tmp_path / "fax.tiff"
    upside_down.save(path, save_all=True, append_images=[clean])
    result = _extract(ocr, path)
    assert result.mime_type == "image/tiff"
    assert result.ocr is not None and result.ocr.pages == 2
    english, _, spanish = result.text.partition("La señora")
    assert scans.cer(scans.ENGLISH, english) <= DEGRADED_CER
    assert scans.cer(scans.SPANISH, "La señora" + spanish) <= CLEAN_CER


def test_a_scanned_pdf_is_read(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    path = scans.pdf([scans.render(scans.ENGLISH)], tmp_path / "scan.pdf")
    result = _extract(ocr, path)
    assert result.mime_type == "application/pdf"
    assert scans.cer(scans.ENGLISH, result.text) <= CLEAN_CER
    assert result.ocr is not None and result.ocr.pages == 1


def test_only_the_scanned_pages_of_a_mixed_pdf_are_read(
    ocr: NativeTikaExtractor, tmp_path: Path
) -> None:
    writer = PdfWriter()
    for source in (
        corpus.pdf(tmp_path),
        scans.pdf([scans.render(scans.SPANISH)], tmp_path / "s.pdf"),
    ):
        for page in PdfReader(source).pages:
            writer.add_page(page)
    path = tmp_path / "mixed.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    result = _extract(ocr, path)
    # The two text pages come from their text layer, the scanned one from OCR alone.
    assert "truth commission" in result.text and "declaración" in result.text
    assert result.ocr is not None and result.ocr.pages == 1
    assert "comisaría número tres" in result.text


def test_a_pdf_with_text_gets_no_ocr(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    result = _extract(ocr, corpus.pdf(tmp_path))
    assert result.ocr is None and "declaración" in result.text


def test_a_picture_without_text_gives_empty_text(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    result = _extract(ocr, scans.photo(tmp_path / "wall.png"))
    assert result.text.strip() == ""
    assert result.ocr is not None and result.ocr.pages == 1 and result.language is None


def test_a_decompression_bomb_is_refused_before_decoding(
    ocr: NativeTikaExtractor, tmp_path: Path
) -> None:
    path = scans.bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1000  # 10 gigapixels declared
    assert _fails(ocr, path) == FailureKind.PIXEL_LIMIT


def test_a_cut_off_tiff_fails_clearly(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    assert _fails(ocr, scans.corrupt_tiff(tmp_path / "cut.tiff")) == FailureKind.MALFORMED


def test_an_empty_image_fails_as_empty(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert _fails(ocr, path) == FailureKind.EMPTY


def test_a_2000_page_scan_stops_at_the_page_limit(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    path = scans.long_scan_pdf(tmp_path / "long.pdf", 2000)
    with pytest.raises(ExtractionError) as caught:
        _extract(ocr, path, Limits(timeout_s=120))
    assert caught.value.kind == FailureKind.PAGE_LIMIT
    assert "2,000 pages" in caught.value.reason and "200-page limit" in caught.value.reason


def test_the_page_limit_counts_tiff_pages(ocr: NativeTikaExtractor, tmp_path: Path) -> None:
    path = tmp_path / "three.tiff"
    blank = Image.new("L", (50, 50), 255)
    blank.save(path, save_all=True, append_images=[blank, blank])
    assert _fails(ocr, path, Limits(max_pages=2)) == FailureKind.PAGE_LIMIT


def test_the_pixel_limit_holds_for_an_ordinary_image(
    ocr: NativeTikaExtractor, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    Image.new("L", (2000, 2000), 255).save(buffer, "PNG")
    path = tmp_path / "big.png"
    path.write_bytes(buffer.getvalue())
    assert _fails(ocr, path, Limits(max_pixels=1_000_000)) == FailureKind.PIXEL_LIMIT


def test_with_ocr_off_an_image_has_no_text(tmp_path: Path) -> None:
    path = scans.save(scans.render(scans.ENGLISH), tmp_path / "scan.png")
    with NativeTikaExtractor(workers=1) as plain:
        result = _extract(plain, path)
    assert result.text.strip() == "" and result.ocr is None


def test_a_timeout_kills_the_runner_and_tesseract_with_the_parser(
    ocr: NativeTikaExtractor, tmp_path: Path
) -> None:
    path = scans.save(scans.render(scans.ENGLISH * 3), tmp_path / "long.png")
    ocr.warm_up()
    (group,) = ocr.pids()  # the parser process leads its own process group
    with pytest.raises(ExtractionError) as caught:
        _extract(ocr, path, Limits(timeout_s=0.5))
    assert caught.value.kind == FailureKind.TIMEOUT
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break  # nothing of it is left: parser, runner, tesseract
        time.sleep(0.05)
    else:
        raise AssertionError("a process of the killed parser's group lives on")


def test_recognised_text_is_held_to_the_text_limit(
    ocr: NativeTikaExtractor, tmp_path: Path
) -> None:
    path = scans.save(scans.render(scans.ENGLISH), tmp_path / "scan.png")
    assert _fails(ocr, path, Limits(max_text_chars=100)) == FailureKind.TEXT_LIMIT
