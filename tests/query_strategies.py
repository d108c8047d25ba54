"""Hypothesis strategies for search queries: words, phrases, prefixes, fuzzy terms, AND, OR,
NOT and parentheses over a given list of words (the property tests of redaction use them)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


def _mutated(word: str, edits: int) -> str:
    return word[:-edits] + "x" * edits if len(word) > edits + 1 else word


def queries(words: Sequence[str], max_leaves: int) -> st.SearchStrategy[str]:
    """Return a strategy of query texts in the query language made of `words`."""
    terms = st.sampled_from(list(words))
    leaf = st.one_of(
        terms,
        st.lists(terms, min_size=2, max_size=3).map(lambda w: '"' + " ".join(w) + '"'),
        st.tuples(terms, st.integers(2, 5)).map(lambda t: t[0][: t[1]] + "*"),
        st.tuples(terms, st.integers(1, 2)).map(lambda t: f"{_mutated(t[0], t[1])}~{t[1]}"),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(" ".join),
            st.tuples(inner, inner).map(" AND ".join),
            st.tuples(inner, inner).map(" OR ".join),
            inner.map(lambda q: f"NOT {q}"),
            inner.map(lambda q: f"({q})"),
        ),
        max_leaves=max_leaves,
    )
