"""The parts of OCR that need no recognition: language choice, the report's shapes, the runner's
checks. (The engine's refusal of a temporary directory on disk, which runs tesseract:
tests/integration/test_ocr_parts.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ExtractionError, FailureKind, OcrOptions, OcrReport, PageImage, RecognisedPage
from ingest.adapters import _ocr_runner
from ingest.adapters.tesseract import memory_directory
from ingest.ocr import Recogniser, parse_languages, report_from_header, report_to_header
from ingest.scratch import memory_dir

PAGE = PageImage(2, 1, b"\x00\xff")


class FakeEngine:
    """An OCR engine above the port: records what it was asked, reads nothing."""

    name = "fake"

    def __init__(self, installed: set[str], script: str | None = "Latin") -> None:
        self.installed = frozenset(installed)
        self.seen_script = script
        self.asked: list[tuple[str, ...]] = []
        self.scripts_asked = 0

    def version(self) -> str:
        return "1.0"

    def languages(self) -> frozenset[str]:
        return self.installed

    def script(self, page: PageImage) -> str | None:
        self.scripts_asked += 1
        return self.seen_script

    def recognise(self, page: PageImage, languages: tuple[str, ...]) -> RecognisedPage:
        self.asked.append(languages)
        return RecognisedPage("words", (90.0, 80.0))


def test_the_items_language_picks_the_model_when_installed() -> None:
    engine = FakeEngine({"spa", "eng"})
    recogniser = Recogniser(engine, OcrOptions())
    assert recogniser.languages("en", PAGE) == ("eng",)
    assert recogniser.languages("fr", PAGE) == ("spa", "eng")  # no French model: the default
    assert recogniser.languages(None, PAGE) == ("spa", "eng")
    assert engine.scripts_asked == 0  # one script among the defaults: nothing to detect


def test_script_detection_narrows_languages_of_several_scripts() -> None:
    engine = FakeEngine({"spa", "rus", "ara"}, script="Cyrillic")
    recogniser = Recogniser(engine, OcrOptions(languages=("spa", "rus", "ara")))
    assert recogniser.languages(None, PAGE) == ("rus",)
    assert engine.scripts_asked == 1
    engine.seen_script = None  # too little text to tell: all of them
    assert recogniser.languages(None, PAGE) == ("spa", "rus", "ara")


def test_no_installed_model_is_a_clear_failure() -> None:
    recogniser = Recogniser(FakeEngine({"deu"}), OcrOptions())
    with pytest.raises(ExtractionError) as caught:
        recogniser.languages(None, PAGE)
    assert caught.value.kind == FailureKind.UNAVAILABLE
    assert caught.value.reason == "OCR unavailable: no model for spa+eng"


def test_language_settings_are_checked() -> None:
    assert parse_languages("spa+eng") == ("spa", "eng")
    assert parse_languages("chi_sim") == ("chi_sim",)
    for bad in ("", "spa;rm", "SPA", "spa eng", "../x"):
        with pytest.raises(ValueError):
            parse_languages(bad)


def test_the_report_keeps_only_its_shapes() -> None:
    report = OcrReport("tesseract", "5.3.0", ("spa", "eng"), 91.25, 3)
    assert report_from_header(report_to_header(report)) == OcrReport(
        "tesseract", "5.3.0", ("spa", "eng"), 91.2, 3
    )
    good = report_to_header(report)
    # A parser taken over by a hostile file cannot put words where nothing is sealed.
    for field, value in (
        ("engine", "la señora Muñoz"),
        ("version", "5.3.0 declaró"),
        ("languages", ["spa", "the witness"]),
        ("confidence", "high"),
        ("confidence", float("nan")),
        ("pages", -1),
        ("pages", True),
    ):
        assert report_from_header({**good, field: value}) is None
    assert report_from_header("not a mapping") is None
    assert report_from_header({**good, "confidence": 250}) == OcrReport(
        "tesseract", "5.3.0", ("spa", "eng"), 100.0, 3
    )


def test_the_runner_refuses_malformed_language_codes() -> None:
    engine = FakeEngine({"spa"})
    header = {"op": "recognise", "width": 2, "height": 1, "languages": ["spa", "-c x=1"]}
    with pytest.raises(ExtractionError) as caught:
        _ocr_runner._answer(engine, header, PAGE.pixels)
    assert caught.value.kind == FailureKind.MALFORMED and engine.asked == []
    header["languages"] = ["spa"]
    assert _ocr_runner._answer(engine, header, PAGE.pixels)["text"] == "words"


def test_the_runner_refuses_pixels_that_do_not_fit_the_page() -> None:
    header = {"op": "recognise", "width": 100, "height": 100, "languages": ["spa"]}
    with pytest.raises(ValueError):
        _ocr_runner._answer(FakeEngine({"spa"}), header, b"\x00" * 10)


def test_the_runner_knows_only_its_engines() -> None:
    with pytest.raises(KeyError):
        _ocr_runner.start("/bin/sh")


def test_memory_directories_are_told_from_disks(tmp_path: Path) -> None:
    found = memory_directory()
    assert found is None or memory_dir(Path(found)) == Path(found)
    assert memory_directory((str(tmp_path / "missing"), "/proc")) is None
