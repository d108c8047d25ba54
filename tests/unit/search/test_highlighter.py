"""One `Highlighter` per page gives every text the snippet `highlight` gives it alone."""

from __future__ import annotations

import pytest

from search import QuerySyntaxError, highlight
from search.highlight import Highlighter

TEXTS = [
    ("La detención ocurrió en 1976. Los policías lo torturaron; Juan Mamany declaró.", "es"),
    ("They tortured him in detention; the police denied the torture. " * 8, "en"),
    ("<b>corriendo</b> & corre " + "x" * 90 + " corr tortura", "es"),
    ("", None),
    ("!!! ???", "fr"),
]
QUERIES = ["", "tortura", "detencion policia", "tortu*", "Mamani~1", '"declaró ante"', "corri*"]


@pytest.mark.parametrize("query_text", QUERIES)
def test_same_snippets_as_one_call_per_text(query_text: str) -> None:
    highlighter = Highlighter(query_text)
    for _ in range(2):  # what it remembers from one text does not leak into the next
        for text, language in TEXTS:
            for words in (40, 4):
                expected = highlight(text, query_text, language, max_words=words)
                assert highlighter.snippet(text, language, max_words=words) == expected


def test_refuses_a_bad_query_and_a_bad_size() -> None:
    with pytest.raises(QuerySyntaxError):
        Highlighter('"unclosed')
    with pytest.raises(ValueError, match="max_words"):
        Highlighter("juez").snippet("el juez", "es", max_words=0)


def test_a_prefix_marks_only_forms_reached_in_that_text() -> None:
    highlighter = Highlighter("tortu*")
    assert "<mark>torturaron</mark>" in highlighter.snippet("lo torturaron", "es")
    assert "<mark>" not in highlighter.snippet("el juez", "es")


@pytest.mark.parametrize("count", [0, 1, 39, 40, 41, 42, 200])
@pytest.mark.parametrize("separator", [" ", ", ", " — ", " " + "." * 60 + " "])
def test_opening_words_from_the_start_of_the_text_are_those_of_the_whole_text(
    count: int, separator: str
) -> None:
    # With nothing to mark, only the start of a text is split; the snippet must be the one
    # the whole text gives (words cut by the slice, long separators, texts ending early).
    from search.highlight import _SPLIT, _render

    text = "«" + separator.join(f"palabra{n}" * (1 + n % 3) for n in range(count)) + "»"
    for words in (1, 5, 40):
        parts = _SPLIT.split(text)
        expected = (
            _render(parts, parts[1::2], set(), 0, min(words, len(parts) // 2))
            if len(parts) > 1
            else "«»"
        )
        assert Highlighter("").snippet(text, "es", max_words=words) == expected
        assert Highlighter("-nada").snippet(text, "es", max_words=words) == expected
