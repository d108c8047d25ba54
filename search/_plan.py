"""Turn a parsed query and its scope into a backend-neutral plan over digests.

Both adapters compile the same plan, so they find the same items for the same query: the
scope and the filters are MUST clauses of the one query the backend runs, and totals and facet
counts are computed under it (aleph's `authz_query`; DESIGN.md promise 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from search import analysis, query
from search.errors import QueryTooBroadError, ScopeRequiredError
from search.ports import Query
from search.vocabulary import Vocabulary

# Each prefix or fuzzy term expands to at most this many analysed terms (Lucene's
# max_expansions idea); past it the query is refused rather than silently truncated.
MAX_EXPANSIONS = 4096

# Field names shared by every backend's schema or mapping.
CONTENT = "content"
ITEM_ID = "item_id"
CASE_ID = "case_id"
KIND = "kind"
LANGUAGE = "language"
TAGS = "tags"
CONSENT = "consent"
CREATED = "created"
YEAR = "year"
UNDETERMINED = "und"  # BCP 47: language not determined
FACET_FIELDS = {"case": CASE_ID, "kind": KIND, "language": LANGUAGE, "tag": TAGS, "year": YEAR}


@dataclass(frozen=True, slots=True)
class Terms:
    """Any of `digests` in the content; `scored` False for prefix/fuzzy expansions."""

    digests: frozenset[str]
    scored: bool = True


@dataclass(frozen=True, slots=True)
class Phrase:
    """Any of `variants` (one digest sequence per analysis language) within `slop`."""

    variants: tuple[tuple[str, ...], ...]
    slop: int = 0


@dataclass(frozen=True, slots=True)
class Field:
    """A keyword field equal to any of `values` (a filter: never scored)."""

    field: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class Created:
    """`created` between `start` and `end` (inclusive; None is open)."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class All:
    """Every document."""


@dataclass(frozen=True, slots=True)
class Nothing:
    """No document."""


@dataclass(frozen=True, slots=True)
class And:
    """All of `must` (scored) and `filter` (unscored), none of `must_not`."""

    must: tuple[Plan, ...] = ()
    filter: tuple[Plan, ...] = ()
    must_not: tuple[Plan, ...] = ()


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of `children`."""

    children: tuple[Plan, ...]


Plan = Terms | Phrase | Field | Created | All | Nothing | And | Or
_FILTERS = (Field, Created)


def day_start(day: date) -> datetime:
    """Return the first instant of `day` in UTC."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """Return the last representable instant (millisecond precision) of `day` in UTC."""
    return datetime.combine(day, time(23, 59, 59, 999000), tzinfo=UTC)


class Planner:
    """Builds plans with one index key and one vocabulary."""

    def __init__(self, digester: analysis.Digester, vocabulary: Vocabulary) -> None:
        self._digester = digester
        self._vocabulary = vocabulary

    def plan(self, request: Query) -> Plan:
        """Return the plan for `request`, its scope and filters included.

        Raises `QuerySyntaxError` or `QueryTooBroadError` (both `QueryError`)."""
        parsed = query.parse(request.text)
        user = self._node(parsed) if parsed is not None else None
        # Each part must hold on its own: (case in A and consent in a) or (case in B and ...);
        # never (case in A or B) and (consent in a or b), which would widen access.
        parts = [
            And(filter=(Field(CASE_ID, part.cases), Field(CONSENT, part.consent_any)))
            for part in request.parts
        ]
        if not parts:
            raise ScopeRequiredError("an empty scope must not reach the planner")
        filters: list[Plan] = [parts[0] if len(parts) == 1 else Or(tuple(parts))]
        wanted = request.filters
        if wanted.cases:
            filters.append(Field(CASE_ID, wanted.cases))
        if wanted.kinds:
            filters.append(Field(KIND, wanted.kinds))
        if wanted.languages:
            filters.append(Field(LANGUAGE, frozenset(_language(v) for v in wanted.languages)))
        if wanted.tags:
            filters.append(Field(TAGS, wanted.tags))
        if wanted.date_from or wanted.date_to:
            filters.append(
                Created(
                    day_start(wanted.date_from) if wanted.date_from else None,
                    day_end(wanted.date_to) if wanted.date_to else None,
                )
            )
        must: tuple[Plan, ...] = (user,) if user is not None else (All(),)
        return And(must=must, filter=tuple(filters))

    def _node(self, node: query.Node) -> Plan | None:
        if isinstance(node, query.Word):
            return self._words(analysis.words(node.text), 0)
        if isinstance(node, query.Phrase):
            return self._words(analysis.words(node.text), node.slop)
        if isinstance(node, query.Prefix):
            found = self._vocabulary.prefix(analysis.fold(node.text.lower()), MAX_EXPANSIONS)
            return self._expansion(found, "prefix")
        if isinstance(node, query.Fuzzy):
            word = node.text.lower()
            found = self._vocabulary.fuzzy(analysis.fold(word), node.distance, MAX_EXPANSIONS)
            if found is not None:
                found |= analysis.query_terms(word)
            return self._expansion(found, "fuzzy")
        if isinstance(node, query.FieldIs):
            field = {"case": CASE_ID, "kind": KIND, "language": LANGUAGE, "tag": TAGS}[node.field]
            value = _language(node.value) if field == LANGUAGE else node.value
            return Field(field, frozenset({value}))
        if isinstance(node, query.DateRange):
            return Created(
                day_start(node.start) if node.start else None,
                day_end(node.end) if node.end else None,
            )
        if isinstance(node, query.Not):
            child = self._node(node.child)
            return None if child is None else And(must=(All(),), must_not=(child,))
        if isinstance(node, query.And):
            return self._and(node)
        children = tuple(c for c in (self._node(n) for n in node.children) if c is not None)
        if not children:
            return None
        return children[0] if len(children) == 1 else Or(children)

    def _and(self, node: query.And) -> Plan | None:
        must: list[Plan] = []
        filters: list[Plan] = []
        must_not: list[Plan] = []
        for child in node.children:
            if isinstance(child, query.Not):
                negated = self._node(child.child)
                if negated is not None:
                    must_not.append(negated)
                continue
            planned = self._node(child)
            if planned is None:
                continue
            (filters if isinstance(planned, _FILTERS) else must).append(planned)
        if not (must or filters or must_not):
            return None
        if not must and not filters:
            must.append(All())
        return And(tuple(must), tuple(filters), tuple(must_not))

    def _words(self, words: list[str], slop: int) -> Plan | None:
        if not words:
            return None  # punctuation only: contributes nothing
        digest = self._digester.digest
        if len(words) == 1:
            return Terms(self._digester.digests(analysis.query_terms(words[0])))
        languages: tuple[str | None, ...] = (*analysis.LANGUAGES, None)
        variants = {tuple(digest(analysis.term(w, lang)) for w in words) for lang in languages}
        return Phrase(tuple(sorted(variants)), slop)

    def _expansion(self, found: set[str] | None, shown: str) -> Plan:
        if found is None:
            raise QueryTooBroadError(
                f"a {shown} term matches more than {MAX_EXPANSIONS} words; add letters"
            )
        if not found:
            return Nothing()
        return Terms(self._digester.digests(found), scored=False)


def _language(value: str) -> str:
    return analysis.normalize_language(value) or UNDETERMINED
