"""Snippets: matched words marked by the same analysis as the index, everything else escaped."""

from __future__ import annotations

import pytest

from search import QuerySyntaxError, highlight

TEXT = (
    "La detención ocurrió en 1976. Los policías lo torturaron; Juan Mamany declaró <ante> el "
    "juez. Las declaraciones fueron tomadas."
)


def test_marks_folded_and_stemmed_matches() -> None:
    snippet = highlight(TEXT, "detencion policia", "es")
    assert "<mark>detención</mark>" in snippet
    assert "<mark>policías</mark>" in snippet
    assert "<mark>" not in snippet.replace("<mark>detención</mark>", "").replace(
        "<mark>policías</mark>", ""
    )


def test_escapes_everything_else() -> None:
    snippet = highlight(TEXT, "juez", "es")
    assert "&lt;ante&gt;" in snippet
    assert "<ante>" not in snippet
    assert highlight("<b>hola</b>", "hola", "es") == "&lt;b&gt;<mark>hola</mark>&lt;/b&gt;"


def test_prefix_fuzzy_and_phrase() -> None:
    assert "<mark>torturaron</mark>" in highlight(TEXT, "tortu*", "es")
    assert "<mark>Mamany</mark>" in highlight(TEXT, "Mamani~1", "es")
    phrase = highlight(TEXT, '"declaró ante"', "es")
    assert "<mark>declaró</mark> &lt;<mark>ante</mark>&gt;" in phrase
    assert "<mark>declaraciones</mark>" not in phrase


def test_negated_words_are_not_marked() -> None:
    snippet = highlight(TEXT, "juez -detencion", "es")
    assert "<mark>juez</mark>" in snippet
    assert "<mark>detención</mark>" not in snippet


def test_window_centres_on_the_best_match() -> None:
    text = " ".join(["relleno"] * 100) + " la detención " + " ".join(["resto"] * 100)
    snippet = highlight(text, "detencion", "es", max_words=10)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>detención</mark>" in snippet
    assert len(snippet.split()) <= 12


def test_no_match_gives_the_opening_words() -> None:
    assert highlight(TEXT, "nada", "es", max_words=3) == "La detención ocurrió…"
    assert highlight("", "nada", "es") == ""


def test_bad_query_is_an_error() -> None:
    with pytest.raises(QuerySyntaxError):
        highlight(TEXT, '"abierta', "es")


def test_decomposed_text_is_marked_whole() -> None:
    import unicodedata

    snippet = highlight(unicodedata.normalize("NFD", "La detención"), "detencion", "es")
    assert snippet == "La <mark>detención</mark>"


def test_blobs_are_shortened_and_never_marked() -> None:
    blob = "a" * 500
    snippet = highlight(f"detención {blob} fin", "detencion aaaa*", "es")
    assert snippet.startswith("<mark>detención</mark> ")
    assert len(snippet) < 120
    assert "<mark>a" not in snippet
