"""Turn a parsed query and its scope into a backend-neutral plan over digests.

Both adapters compile the same plan, so they find the same items for the same query: the
scope and the filters are MUST clauses of the one query the backend runs, and totals and facet
counts are computed under it (aleph's `authz_query`; DESIGN.md promise 4).

Redaction (DESIGN.md promise 11): every item's text is indexed twice, in `content` (every word)
and in `content_anonymised` (without the words of the survivor's identity fields). Items that a
scope part with `redact_identities` reaches are matched on `content_anonymised` only, with words
expanded against the anonymised vocabulary only. When the principal has such a part at all,
every score comes from `content_anonymised`: the other parts match on `content` (a named item
is found by its survivor's name) but unscored, so no score depends on the term statistics of
identity text. The planner never reads `content` in any other way for such a principal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from search import analysis, query
from search.errors import QueryTooBroadError, ScopeRequiredError
from search.ports import AccessScope, Query
from search.vocabulary import Vocabulary

# Each prefix or fuzzy term expands to at most this many analysed terms (Lucene's
# max_expansions idea); past it the query is refused rather than silently truncated.
MAX_EXPANSIONS = 4096

# Field names shared by every backend's schema or mapping.
CONTENT = "content"  # every word of the text
ANONYMISED = "content_anonymised"  # the text without the words of its identity fields
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
    """Any of `digests` in text field `field`; `scored` False for prefix/fuzzy expansions."""

    digests: frozenset[str]
    scored: bool = True
    field: str = CONTENT


@dataclass(frozen=True, slots=True)
class Phrase:
    """Any of `variants` (one digest sequence per analysis language) within `slop`, in text
    field `field`."""

    variants: tuple[tuple[str, ...], ...]
    slop: int = 0
    field: str = CONTENT


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
    """All of `must` (scored) and `filter` (unscored), none of `must_not`; `should` only adds
    its score where it matches (a plan with `should` always has a `must` or a `filter`)."""

    must: tuple[Plan, ...] = ()
    filter: tuple[Plan, ...] = ()
    must_not: tuple[Plan, ...] = ()
    should: tuple[Plan, ...] = ()


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


@dataclass(frozen=True, slots=True)
class _View:
    """How a query's words are planned: on which field, expanded against which vocabulary."""

    field: str
    vocabulary: Vocabulary
    # Only for `content` beside a redacted part: an expansion's size is checked against the
    # anonymised vocabulary, so whether a query is too broad never depends on identity words.
    limit_by: Vocabulary | None = None


class Planner:
    """Builds plans with one index key and its two vocabularies (every word, and the words
    met outside identity text)."""

    def __init__(
        self, digester: analysis.Digester, vocabulary: Vocabulary, anonymised: Vocabulary
    ) -> None:
        self._digester = digester
        self._full = _View(CONTENT, vocabulary)
        self._anonymised = _View(ANONYMISED, anonymised)
        self._named = _View(CONTENT, vocabulary, limit_by=anonymised)

    def plan(self, request: Query) -> Plan:
        """Return the plan for `request`, its scope and filters included.

        Raises `QuerySyntaxError` or `QueryTooBroadError` (both `QueryError`)."""
        parsed = query.parse(request.text)
        plain = [part for part in request.parts if not part.redact_identities]
        redacted = [part for part in request.parts if part.redact_identities]
        if not plain and not redacted:
            raise ScopeRequiredError("an empty scope must not reach the planner")
        filters = _filters(request)
        if not redacted or parsed is None:
            # No redaction, or nothing typed (the scope and filters alone decide): as ever.
            user = self._node(parsed, self._full) if parsed is not None else None
            must: tuple[Plan, ...] = (user,) if user is not None else (All(),)
            return And(must=must, filter=(_scope(plain + redacted), *filters))
        anonymised = self._node(parsed, self._anonymised)
        if not plain:
            must = (anonymised,) if anonymised is not None else (All(),)
            return And(must=must, filter=(_scope(redacted), *filters))
        # Both kinds of part. Matching: parts without the obligation on `content`, the others
        # (items no plain part reaches: `decide` takes the rule that obliges least) on
        # `content_anonymised`. Scoring: `content_anonymised` alone, for every hit.
        named = self._node(parsed, self._named)
        scored = (anonymised,) if anonymised is not None else ()
        plain_scope, redacted_scope, shared = _split(plain, redacted)
        # The branches are disjoint, so a hit's score is that of its branch.
        either = Or(
            (
                And(filter=(plain_scope, named or All()), should=scored),
                And(must=scored or (All(),), filter=(redacted_scope,), must_not=(plain_scope,)),
            )
        )
        return And(must=(either,), filter=(*shared, *filters))

    def _node(self, node: query.Node, view: _View) -> Plan | None:
        if isinstance(node, query.Word):
            return self._words(analysis.words(node.text), 0, view.field)
        if isinstance(node, query.Phrase):
            return self._words(analysis.words(node.text), node.slop, view.field)
        if isinstance(node, query.Prefix):
            surface = analysis.fold(node.text.lower())
            found = _limited(view, lambda vocabulary, limit: vocabulary.prefix(surface, limit))
            return self._expansion(found, "prefix", view.field)
        if isinstance(node, query.Fuzzy):
            word = node.text.lower()
            folded = analysis.fold(word)
            distance = node.distance
            found = _limited(
                view, lambda vocabulary, limit: vocabulary.fuzzy(folded, distance, limit)
            )
            if found is not None:
                found |= analysis.query_terms(word)
            return self._expansion(found, "fuzzy", view.field)
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
            child = self._node(node.child, view)
            return None if child is None else And(must=(All(),), must_not=(child,))
        if isinstance(node, query.And):
            return self._and(node, view)
        children = tuple(c for c in (self._node(n, view) for n in node.children) if c is not None)
        if not children:
            return None
        return children[0] if len(children) == 1 else Or(children)

    def _and(self, node: query.And, view: _View) -> Plan | None:
        must: list[Plan] = []
        filters: list[Plan] = []
        must_not: list[Plan] = []
        for child in node.children:
            if isinstance(child, query.Not):
                negated = self._node(child.child, view)
                if negated is not None:
                    must_not.append(negated)
                continue
            planned = self._node(child, view)
            if planned is None:
                continue
            (filters if isinstance(planned, _FILTERS) else must).append(planned)
        if not (must or filters or must_not):
            return None
        if not must and not filters:
            must.append(All())
        return And(tuple(must), tuple(filters), tuple(must_not))

    def _words(self, words: list[str], slop: int, field: str) -> Plan | None:
        if not words:
            return None  # punctuation only: contributes nothing
        digest = self._digester.digest
        if len(words) == 1:
            return Terms(self._digester.digests(analysis.query_terms(words[0])), field=field)
        languages: tuple[str | None, ...] = (*analysis.LANGUAGES, None)
        variants = {tuple(digest(analysis.term(w, lang)) for w in words) for lang in languages}
        return Phrase(tuple(sorted(variants)), slop, field)

    def _expansion(self, found: set[str] | None, shown: str, field: str) -> Plan:
        if found is None:
            raise QueryTooBroadError(
                f"a {shown} term matches more than {MAX_EXPANSIONS} words; add letters"
            )
        if not found:
            return Nothing()
        return Terms(self._digester.digests(found), scored=False, field=field)


def _limited(view: _View, expand: Callable[[Vocabulary, int], set[str] | None]) -> set[str] | None:
    """Expand in `view`'s vocabulary; None when too broad. With `limit_by`, breadth is judged
    there alone and the view's own expansion is not limited (identity words are few)."""
    if view.limit_by is None:
        return expand(view.vocabulary, MAX_EXPANSIONS)
    if expand(view.limit_by, MAX_EXPANSIONS) is None:
        return None
    return expand(view.vocabulary, sys.maxsize)


def _scope(parts: list[AccessScope]) -> Plan:
    """Items some part reaches. Each part must hold on its own: (case in A and consent in a)
    or (case in B and ...); never (case in A or B) and (consent in a or b), which would widen
    access."""
    each: list[Plan] = [
        And(filter=(Field(CASE_ID, part.cases), Field(CONSENT, part.consent_any))) for part in parts
    ]
    return each[0] if len(each) == 1 else Or(tuple(each))


def _split(
    plain: list[AccessScope], redacted: list[AccessScope]
) -> tuple[Plan, Plan, tuple[Plan, ...]]:
    """Return the scopes of `plain` and `redacted` parts, and filters common to both. When one
    part of each kind covers the same cases (an advocate's named and anonymised parts), the
    case filter is shared and each branch tests consent only: the engine evaluates the case
    filter once instead of three times."""
    if len(plain) == 1 and len(redacted) == 1 and plain[0].cases == redacted[0].cases:
        return (
            Field(CONSENT, plain[0].consent_any),
            Field(CONSENT, redacted[0].consent_any),
            (Field(CASE_ID, plain[0].cases),),
        )
    return _scope(plain), _scope(redacted), ()


def _filters(request: Query) -> list[Plan]:
    filters: list[Plan] = []
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
    return filters


def _language(value: str) -> str:
    return analysis.normalize_language(value) or UNDETERMINED
