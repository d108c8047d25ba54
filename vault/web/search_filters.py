"""The search page's form: the filters read from a POSTed form, and the facet counts offered
beside them. The filters go to `vault.searching.search` as the API's do; the page never narrows
or widens the scope itself (a named case the reader cannot search is refused there).

Facet counts come with every search (the engine counts them inside the reader's scope, on the
same query and filters): the page only chooses which to offer. Each facet offers its
`FACET_VALUES_SHOWN` most frequent values (plus any value already ticked); the API returns up to
the engine's 1,000 per facet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Final

from fastapi import Request
from starlette.datastructures import FormData

from search.ports import UNDETERMINED_LANGUAGE
from vault.domain import KINDS
from vault.errors import BadField
from vault.searching import SearchRequest
from vault.web import i18n
from vault.web.deposit_pages import KIND_NAMES, LANGUAGE_NAMES
from vault.web.render import N_, language_of

FACET_VALUES_SHOWN: Final = 20
# The API's limits on a filter (vault.api.search_routes.Names).
MAX_VALUES: Final = 100
MAX_VALUE_CHARS: Final = 64
# Form field -> the facet whose counts stand beside its choices.
FILTER_FACETS: Final = {"kind": "kind", "language": "language", "case": "case", "tag": "tag"}
UNDETERMINED_NAME: Final = N_("Undetermined")


@dataclass(frozen=True)
class Chosen:
    """The filters of one search as the form sent them."""

    kinds: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    cases: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    date_from: date | None = None
    date_to: date | None = None

    def selected(self, field: str) -> frozenset[str]:
        """Return the values ticked in the form field `field` (kind, language, case, tag)."""
        return {
            "kind": self.kinds,
            "language": self.languages,
            "case": self.cases,
            "tag": self.tags,
        }[field]

    def request(self, text: str, page: int, page_size: int) -> SearchRequest:
        """Return the search use case's request for `text` under these filters."""
        return SearchRequest(
            text=text,
            cases=self.cases,
            kinds=self.kinds,
            languages=self.languages,
            tags=self.tags,
            date_from=self.date_from,
            date_to=self.date_to,
            page=page,
            page_size=page_size,
        )

    def hidden_fields(self) -> list[tuple[str, str]]:
        """Return the form fields that carry these filters to another page of results."""
        fields = [(name, value) for name in FILTER_FACETS for value in sorted(self.selected(name))]
        if self.date_from:
            fields.append(("date_from", self.date_from.isoformat()))
        if self.date_to:
            fields.append(("date_to", self.date_to.isoformat()))
        return fields


def _values(form: FormData, name: str) -> frozenset[str]:
    values = [str(v).strip() for v in form.getlist(name)]
    values = [v for v in values if v]
    if len(values) > MAX_VALUES or any(len(v) > MAX_VALUE_CHARS for v in values):
        raise BadField(name, f"at most {MAX_VALUES} values of {MAX_VALUE_CHARS} characters")
    return frozenset(values)


def _date(form: FormData, name: str) -> date | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadField(name, "a date as YYYY-MM-DD") from None


def chosen(form: FormData) -> Chosen:
    """Read the filters of a search form. Raises `BadField` on a bad date or too many values."""
    return Chosen(
        kinds=_values(form, "kind"),
        languages=_values(form, "language"),
        cases=_values(form, "case"),
        tags=_values(form, "tag"),
        date_from=_date(form, "date_from"),
        date_to=_date(form, "date_to"),
    )


@dataclass(frozen=True)
class Choice:
    """One value offered in a filter: its label, its count in the current results (None before
    a search), and whether it is ticked."""

    value: str
    label: str
    count: int | None
    checked: bool


def _label(translate: Callable[[str], str], field: str, value: str) -> str:
    if field == "kind" and value in KIND_NAMES:
        return translate(KIND_NAMES[value])
    if field == "language":
        if value == UNDETERMINED_LANGUAGE:
            return translate(UNDETERMINED_NAME)
        if value in LANGUAGE_NAMES:
            return translate(LANGUAGE_NAMES[value])
    return value


def choices(
    request: Request, picked: Chosen, facets: Mapping[str, Mapping[str, int]] | None
) -> dict[str, list[Choice]]:
    """Return, per filter field, the values to offer with their facet counts.

    Kinds are a fixed vocabulary and always offered; languages, cases and tags are offered as
    the results' facets hold them (counted inside the reader's scope, so they never name what the
    reader may not see), the most frequent first, at most `FACET_VALUES_SHOWN`, plus the values
    already ticked.
    """
    out: dict[str, list[Choice]] = {}
    catalog = i18n.translations(language_of(request))
    for field, facet in FILTER_FACETS.items():
        counts = facets.get(facet, {}) if facets is not None else {}
        selected = picked.selected(field)
        if field == "kind":
            values = list(KINDS)
        else:
            # The most frequent, ties by value. Two C-level sorts (the second is stable): a
            # facet may hold 1,000 values, and a key function in Python would cost ~1 ms.
            ranked = sorted(counts.items())
            ranked.sort(key=itemgetter(1), reverse=True)
            frequent = [value for value, _ in ranked[:FACET_VALUES_SHOWN]]
            values = frequent + sorted(selected - set(frequent))
        out[field] = [
            Choice(
                value,
                _label(catalog.gettext, field, value),
                counts.get(value, 0) if facets is not None else None,
                value in selected,
            )
            for value in values
        ]
    return out
