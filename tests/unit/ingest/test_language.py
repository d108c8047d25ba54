"""Language detection on a paragraph, and no guess on a few words."""

from __future__ import annotations

from ingest import detect_language
from tests import corpus


def test_spanish_and_english_paragraphs() -> None:
    assert detect_language(corpus.SPANISH) == "es"
    assert detect_language(corpus.ENGLISH) == "en"


def test_one_sentence_is_enough() -> None:
    assert detect_language("El testigo describió la detención y la tortura.") == "es"
    assert detect_language("The witness described the detention and the torture.") == "en"


def test_too_little_text_gives_no_answer() -> None:
    assert detect_language("hola") is None
    assert detect_language("") is None
    assert detect_language("12345 67890 ---- 2024-03-12") is None
