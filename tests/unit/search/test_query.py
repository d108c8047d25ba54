"""The query parser: every construct of the language, and errors that say where."""

from __future__ import annotations

from datetime import date

import pytest

from search import QuerySyntaxError
from search.query import (
    And,
    DateRange,
    FieldIs,
    Fuzzy,
    Not,
    Or,
    Phrase,
    Prefix,
    Word,
    parse,
    positive_leaves,
)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("", None),
        ("   ", None),
        ("tortura", Word("tortura")),
        ("tortura detención", And((Word("tortura"), Word("detención")))),
        ("a AND b", And((Word("a"), Word("b")))),
        ("a OR b c", Or((Word("a"), And((Word("b"), Word("c")))))),
        ("(a OR b) c", And((Or((Word("a"), Word("b"))), Word("c")))),
        ("a -b", And((Word("a"), Not(Word("b"))))),
        ("NOT a", Not(Word("a"))),
        ("a and b or c", And((Word("a"), Word("and"), Word("b"), Word("or"), Word("c")))),
        ('"golpes eléctricos"', Phrase("golpes eléctricos")),
        ('"declaró ante"~2', Phrase("declaró ante", 2)),
        ("tort*", Prefix("tort")),
        ("Mamani~1", Fuzzy("Mamani", 1)),
        ("Mamani~", Fuzzy("Mamani", 1)),
        ("Mamani~2", Fuzzy("Mamani", 2)),
        ("case:C-12", FieldIs("case", "C-12")),
        ('kind:"audio note"', FieldIs("kind", "audio note")),
        ("lang:es", FieldIs("language", "es")),
        ("language:en", FieldIs("language", "en")),
        ("tag:detention", FieldIs("tag", "detention")),
        ("date:2020-01-01..2021-12-31", DateRange(date(2020, 1, 1), date(2021, 12, 31))),
        ("date:2020-02", DateRange(date(2020, 2, 1), date(2020, 2, 29))),
        ("date:..2019", DateRange(None, date(2019, 12, 31))),
        ("date:2019-06..", DateRange(date(2019, 6, 1), None)),
        ("year:2019", DateRange(date(2019, 1, 1), date(2019, 12, 31))),
        ("year:2019..2021", DateRange(date(2019, 1, 1), date(2021, 12, 31))),
        ("10:30", Word("10:30")),
        ("e-mail", Word("e-mail")),
    ],
)
def test_parses(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('tortura "golpes', 8),
        ("(a OR b", 0),
        ("a)", 1),
        ("a AND", 2),
        ("OR a", 0),
        ("a OR", 2),
        ("NOT", 0),
        ("()", 0),
        ('""', 0),
        ("t*rt", 0),
        ("t*", 0),
        ("x~3", 1),
        ("x~a", 0),
        ('"a b"~', 0),
        ('"a b"~11', 0),
        ("date:2020-13-01", 5),
        ("date:2021..2020", 5),
        ("date:..", 5),
        ("year:20x", 5),
        ("case:", 0),
    ],
)
def test_bad_syntax_names_the_position(text: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert caught.value.position == position
    assert str(position) in str(caught.value)


def test_overlong_queries_are_refused() -> None:
    with pytest.raises(QuerySyntaxError):
        parse("a " * 1500)
    with pytest.raises(QuerySyntaxError):
        parse(" ".join(["a"] * 250))


def test_positive_leaves_skip_negations() -> None:
    leaves = positive_leaves(parse('a -b (c OR NOT d) "e f" gg* h~1 case:x'))
    assert leaves == [Word("a"), Word("c"), Phrase("e f"), Prefix("gg"), Fuzzy("h", 1)]


@pytest.mark.parametrize("text", ["date:Wankarani", "year:Wankarani", "(Wankarani", "Wankarani)"])
def test_errors_never_repeat_the_query(text: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert "wankarani" not in str(caught.value).lower()


def test_reprs_never_show_text() -> None:
    from datetime import UTC, datetime

    from search import AccessScope, IndexDocument, Query

    scope = AccessScope(frozenset({"c"}), frozenset({"legal"}))
    assert "Wankarani" not in repr(Query("Wankarani", scope))
    document = IndexDocument("i", "c", "k", "es", datetime.now(UTC), text="Wankarani")
    assert "Wankarani" not in repr(document)


def test_scopes_must_be_frozensets_or_tuples_of_scopes() -> None:
    from search import AccessScope, Query, ScopeRequiredError

    with pytest.raises(TypeError):
        AccessScope({"c"}, frozenset({"legal"}))  # type: ignore[arg-type]
    with pytest.raises(ScopeRequiredError):
        Query("x", [AccessScope(frozenset({"c"}), frozenset({"legal"}))])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="page_size"):
        Query("x", (), page_size=0)
    with pytest.raises(ValueError, match="page"):
        Query("x", (), page=0)
