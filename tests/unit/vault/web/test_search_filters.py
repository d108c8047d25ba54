"""The search form's filters and facet choices: a facet offers a bounded number of values (the
most frequent, plus those ticked), kinds always, and the form's values are checked as the API's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
from fastapi import Request
from starlette.datastructures import FormData

from vault.errors import BadField
from vault.web import search_filters
from vault.web.search_filters import FACET_VALUES_SHOWN, Chosen, choices, chosen

REQUEST = cast(Request, SimpleNamespace(state=SimpleNamespace(language="en")))


def test_a_facet_offers_its_most_frequent_values_and_the_ticked_ones() -> None:
    cases = {f"case{n:03d}": n for n in range(1, 1001)}  # as many values as the engine counts
    facets = {"kind": {"document": 3}, "language": {"es": 2, "und": 1}, "case": cases, "tag": {}}
    picked = Chosen(cases=frozenset({"case001", "case999"}))
    offered = choices(REQUEST, picked, facets)
    values = [c.value for c in offered["case"]]
    # The 20 most frequent, most frequent first, then what is ticked but rarer.
    assert values == [f"case{n:03d}" for n in range(1000, 1000 - FACET_VALUES_SHOWN, -1)] + [
        "case001"
    ]
    assert [c.checked for c in offered["case"]].count(True) == 2
    assert [(c.value, c.count) for c in offered["kind"]] == [
        ("testimony", 0),
        ("document", 3),
        ("media", 0),
        ("medical_report", 0),
    ]
    assert [(c.label, c.count) for c in offered["language"]] == [
        ("Spanish", 2),
        ("Undetermined", 1),
    ]
    assert offered["tag"] == []
    # Ties go by value, so the same results always offer the same values.
    tied = choices(REQUEST, Chosen(), {"tag": {"b": 1, "a": 1, "c": 2}})
    assert [c.value for c in tied["tag"]] == ["c", "a", "b"]
    # Before a search: the kinds without counts, nothing else.
    before = choices(REQUEST, Chosen(), None)
    assert [c.count for c in before["kind"]] == [None] * 4 and before["case"] == []


def test_the_form_is_read_with_the_apis_limits() -> None:
    form = FormData(
        [("kind", "document"), ("kind", " "), ("case", "c1"), ("date_from", "2020-01-31")]
    )
    got = chosen(form)
    assert got.kinds == {"document"} and got.cases == {"c1"}
    assert got.date_from is not None and got.date_from.isoformat() == "2020-01-31"
    assert ("date_from", "2020-01-31") in got.hidden_fields()
    with pytest.raises(BadField) as bad:
        chosen(FormData([("date_to", "31/01/2020")]))
    assert bad.value.field == "date_to"
    too_many = [("tag", f"t{n}") for n in range(search_filters.MAX_VALUES + 1)]
    with pytest.raises(BadField):
        chosen(FormData(too_many))
    with pytest.raises(BadField):
        chosen(FormData([("case", "x" * (search_filters.MAX_VALUE_CHARS + 1))]))
