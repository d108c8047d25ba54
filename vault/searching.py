"""The search use case: access scope, index query, a check per hit, snippets, a custody entry.

DESIGN.md "Search": principal -> `policies.search_scope` -> one `search.AccessScope` per part
-> the index query (totals and facets are counted inside that scope by the engine) -> for the
page of hits, `policies.decide(item.search)` on each item as the database holds it now ->
decrypt the item's sealed extracted text -> `search.highlight` -> one ledger entry.

The ledger entry is always committed before the page is returned: no hit is dropped while the
page is shown, so the request's thread writes it before it opens any title or text itself,
while a search helper process (`vault.search_helper`) shows part of the page.

Promise 1: the query may name a survivor. It is never logged, never put in an error message,
and is kept in the ledger only sealed (to the vault's metadata key); the entry's clear details
hold the ids returned and counts.

Redaction (promise 11) happens in the query plan, not after it: the scope parts that carry
`redact_identities` go to the index flagged, and the engine matches and scores their items
without the words of the identity fields (`search._plan`), so hits, totals, facets, order and
scores are the same whatever name those fields hold. Everything a result shows then passes
through `present`, the one place where the obligation applies to what is shown: the title reads
"[redacted]", and every identity word (`vault.search_redaction`) is replaced in the text before
the snippet is made. Without recorded identity fields such a hit shows no snippet (fail closed).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select

import keys
from policies import (
    Allow,
    Principal,
    Resource,
    Scope,
    actions,
    decide,
    kinds,
    obligations,
    search_scope,
)
from search import (
    UNDETERMINED_LANGUAGE,
    AccessScope,
    Filters,
    Hit,
    IndexFormatError,
    Query,
    QueryError,
    Results,
    SearchError,
)
from search.highlight import Highlighter
from vault import item_keys, ledger
from vault.access import NO_SUCH_CASE, item_resource, refuse
from vault.db import Case, Item, ItemKey
from vault.db.access_tables import ItemIdentity
from vault.db.jobs_tables import ItemText
from vault.errors import BadField
from vault.identity import REDACTED
from vault.indexing import index_of
from vault.parts import METADATA_IDENTITY, Vault
from vault.sealing import open_json, read_sealed_text, seal_json
from vault.search_helper import MIN_HELPED_HITS, SNIPPET_WORDS, Showable, Shown, show
from vault.search_redaction import identity_words, redact
from vault.storage import StorageError

log = logging.getLogger(__name__)

# The helper answers about a millisecond after this thread would have shown the same number of
# hits (the pipe, its process waking up): it is given this many fewer.
HELPER_HEAD_START = 2
# When this thread writes the custody entry meanwhile, it counts as this many hits (about
# 1.3 ms, the time of showing four hits, on the 100k corpus).
HELPER_MEANWHILE_HITS = 4
# The helper's share of the rest. Not half: under load the server's process is bound by its
# interpreter lock (one core) while the helpers' processes have CPU to spare, so every hit a
# helper shows frees the server for other requests (bench/RESULTS.md, the load mix); this
# thread keeps a quarter, which it shows while the helper works.
HELPER_SHARE = 0.75


@dataclass(frozen=True)
class SearchRequest:
    """What a person asked for: the query text and structured filters, one page of results."""

    text: str = field(repr=False)  # a query may name a survivor: keep it out of tracebacks
    cases: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    page_size: int = 20


@dataclass(frozen=True)
class SearchHit:
    """One result: structural metadata, the title and a snippet (HTML, matches in `<mark>`).

    `snippet` and `title` are None when the item has no text yet, or when they are withheld
    (`redacted`: the principal's decision carries `redact_identities`)."""

    item_id: str
    case_id: str
    kind: str
    language: str | None
    tags: tuple[str, ...]
    created_at: datetime
    score: float
    title: str | None
    snippet: str | None
    redacted: bool


@dataclass(frozen=True)
class SearchResults:
    """One page of results, the total in scope and facet counts (case, kind, language, tag,
    year), all counted inside the principal's scope."""

    total: int
    page: int
    page_size: int
    hits: list[SearchHit]
    facets: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class _Item:
    """An item of the page as the database holds it now: what its check and display need."""

    id: str
    case_id: str
    kind: str
    language: str | None
    tags: list[str]
    consent: list[str]
    depositor: str
    created_at: datetime
    sealed_meta: bytes = field(repr=False)
    text_object: str | None  # its sealed extracted text; None if not extracted (yet)


@dataclass(frozen=True)
class _Found:
    """A hit the per-item check allowed, with what it needs to be shown."""

    hit: Hit
    item: _Item
    decision: Allow
    keyring: keys.KeyStore = field(repr=False)
    wrapped: bytes = field(repr=False)  # the item identity, wrapped by the keyring
    fields: bytes | None  # the sealed identity fields, if recorded

    @functools.cached_property
    def identity(self) -> str:
        """The item identity, unwrapped on first use: the hits a search helper shows are
        unwrapped and sent first, the others while it works. Raises `keys.KeyringError`."""
        return item_keys.open_identity(self.keyring, self.item.id, self.wrapped)


# One query for the page, built once (it runs on every search): each joined table has at most
# one row per item. Columns, not ORM entities: nothing here is changed or kept.
_PAGE_ROWS = (
    select(
        Item.id,
        Item.case_id,
        Item.kind,
        Item.language,
        Item.tags,
        Item.consent,
        Item.depositor,
        Item.created_at,
        Item.sealed_meta,
        ItemText.object_name,
        ItemIdentity.sealed,
        ItemKey.wrapped,
    )
    .outerjoin(ItemText, ItemText.item_id == Item.id)
    .outerjoin(ItemIdentity, ItemIdentity.item_id == Item.id)
    .outerjoin(ItemKey, ItemKey.item_id == Item.id)
    .where(Item.id.in_(bindparam("ids", expanding=True)))
)
_CASE_IDS = select(Case.id)


def _item_of(row: Sequence[Any]) -> _Item:
    (item_id, case_id, kind, language, tags, consent, depositor, created_at, sealed_meta) = row[:9]
    return _Item(
        id=item_id,
        case_id=case_id,
        kind=kind,
        language=language,
        tags=tags,
        consent=consent,
        depositor=depositor,
        created_at=created_at,
        sealed_meta=sealed_meta,
        text_object=row[9],
    )


def _scope(principal: Principal, cases: Collection[str]) -> tuple[AccessScope, ...]:
    scope = search_scope(principal, actions.ITEM_SEARCH, cases)
    if scope.is_empty:
        return ()
    out: list[AccessScope] = []
    # Parts with and without the redaction obligation stay apart: the engine matches them on
    # different fields (promise 11). Within each, parts merge only into one exact filter;
    # otherwise they are kept apart, as merging would widen access (policies.Scope).
    for redact_identities in (False, True):
        parts = tuple(p for p in scope.parts if p.redact_identities == redact_identities)
        single = Scope(parts).single_filter() if parts else None
        if single is not None:
            out.append(AccessScope(single[0], single[1], redact_identities))
        else:
            out += (AccessScope(p.cases, p.consent_any, redact_identities) for p in parts)
    return tuple(out)


def _query(request: SearchRequest, scope: tuple[AccessScope, ...]) -> Query:
    filters = Filters(
        kinds=request.kinds,
        languages=request.languages,
        tags=request.tags,
        date_from=request.date_from,
        date_to=request.date_to,
    )
    try:
        return Query(request.text, scope, filters, page=request.page, page_size=request.page_size)
    except ValueError as exc:  # page or page_size out of range; the message names no text
        raise BadField("page", str(exc)) from exc


def _refuse_cases_out_of_scope(
    vault: Vault,
    principal: Principal,
    named: Collection[str],
    held: Collection[str],
    scope: tuple[AccessScope, ...],
) -> None:
    # A case the request names but the search cannot reach (unknown, or hidden from the
    # caller) is an error, not "0 results" a person would take for an empty case; unknown and
    # hidden get the same answer and one ledger entry each (vault.access.authorize_case).
    reachable = frozenset().union(*(part.cases for part in scope))
    for case_id in sorted(frozenset(named) - reachable):
        reason = NO_SUCH_CASE if case_id not in held else "case outside the search scope"
        stand_in = Resource(kind=kinds.CASE, case_id=case_id)
        refuse(
            vault.sessions, principal, actions.ITEM_SEARCH, stand_in, reason, f"no case {case_id}"
        )


def search(vault: Vault, principal: Principal, request: SearchRequest) -> SearchResults:
    """Run `request` for `principal` inside the scope the policy gives, and record it.

    Raises `BadField` on a query the index cannot run (the reason and position, never the
    text) or a page out of range; `NotFound` for a named case the caller cannot search
    (unknown or hidden alike); `search.SearchError` if the index fails.
    """
    with vault.sessions() as session:
        # Core execution (`connection().execute`) of column selects: the ORM's handling of a
        # statement costs more than this query.
        held = set(session.connection().execute(_CASE_IDS).scalars().all())
    # Rules without a case grant (advocates) reach only the cases named here: every case the
    # vault holds, or those the request names.
    cases = held & request.cases if request.cases else held
    scope = _scope(principal, cases)
    _refuse_cases_out_of_scope(vault, principal, request.cases, held, scope)
    query = _query(request, scope)
    try:
        results = index_of(vault).search(query)
    except QueryError as exc:
        raise BadField("q", str(exc)) from exc
    except IndexFormatError as exc:
        # An index of an older format: the operator must run a reindex. The message
        # names the index and the remedy, never a query or a word.
        log.error("search index refused: %s", exc)
        raise
    except SearchError:
        log.error("search failed in the index (%s)", vault.settings.index)
        raise
    found, dropped = _check_hits(vault, principal, results.hits)
    # Nothing is dropped while showing, so what the page returns is known now: it is recorded
    # by this thread while a search helper shows its part of the page. Either way nothing is
    # shown unless the entry committed first.
    ids = [entry.item.id for entry in found]
    total = max(0, results.total - len(dropped))
    counts = SearchResults(total, results.page, results.page_size, [], {})
    page = present(
        vault,
        request.text,
        results,
        found,
        dropped,
        meanwhile=lambda: _record(vault, principal, request, ids, counts),
    )
    if [hit.item_id for hit in page.hits] != ids or page.total != total:
        # Cannot happen (no hit is dropped while shown); if it did, the entry would not say
        # what was returned, so nothing is.
        raise RuntimeError("search page differs from its custody entry")
    return page


def _check_hits(
    vault: Vault, principal: Principal, hits: list[Hit]
) -> tuple[list[_Found], list[tuple[Hit, _Item | None]]]:
    """Decide each hit against the item as the database holds it now (consent withdrawn since
    it was indexed, item shredded): the index's scope filter is never the only check."""
    found: list[_Found] = []
    dropped: list[tuple[Hit, _Item | None]] = []
    if not hits:
        return found, dropped
    with vault.sessions() as session:
        ids = [h.item_id for h in hits]
        rows = session.connection().execute(_PAGE_ROWS, {"ids": ids}).all()
        items = {row[0]: _item_of(row) for row in rows}
        fields = {row[0]: row[10] for row in rows if row[10] is not None}
        wrapped = {row[0]: row[11] for row in rows if row[11] is not None}
        for hit in hits:
            item = items.get(hit.item_id)
            decision = decide(principal, actions.ITEM_SEARCH, item_resource(item)) if item else None
            if item is None or not isinstance(decision, Allow):
                dropped.append((hit, item))
                continue
            key = wrapped.get(item.id)
            if key is None:  # shredded: nothing of it may be shown
                dropped.append((hit, item))
                continue
            found.append(_Found(hit, item, decision, vault.keyring, key, fields.get(item.id)))
    return found, dropped


def present(
    vault: Vault,
    query_text: str,
    results: Results,
    found: list[_Found],
    dropped: list[tuple[Hit, _Item | None]],
    meanwhile: Callable[[], None] | None = None,
) -> SearchResults:
    """Build what the principal sees: hits with titles and snippets, totals and facets.

    **The one place where redaction applies to what is shown** (module docstring). Hits the
    per-item check dropped are taken out of the total and the facet counts too; no hit is
    dropped here (a redacted hit was matched without identity words already). `meanwhile` is
    called before any title or text is opened in this thread (after the search helper was
    given its part, if any); if it raises, nothing is shown.
    """
    hits = []
    if found:
        # One per page: the query is parsed once and each distinct word analysed once.
        highlighter = Highlighter(query_text)
        shown = _show_unredacted(vault, highlighter, query_text, found, meanwhile)
        hits = [
            _show(vault, highlighter, entry, shown.get(position))
            for position, entry in enumerate(found)
        ]
    elif meanwhile is not None:
        meanwhile()
    facets = {name: dict(counts) for name, counts in results.facets.items()}
    for gone, row in dropped:
        _uncount(facets, gone, row)
    total = max(0, results.total - len(dropped))
    return SearchResults(total, results.page, results.page_size, hits, facets)


def _redacted(entry: _Found) -> bool:
    return obligations.REDACT_IDENTITIES in entry.decision.obligations


def _show_unredacted(
    vault: Vault,
    highlighter: Highlighter,
    query_text: str,
    found: list[_Found],
    meanwhile: Callable[[], None] | None,
) -> dict[int, Shown]:
    """Return the title and snippet of each hit without a redaction obligation, by position.

    With a search helper (`vault.search_helper`), it shows most of them in its process while
    this thread calls `meanwhile` and shows the rest; if it is busy or fails, this thread shows
    all.
    """
    plain = [(position, entry) for position, entry in enumerate(found) if not _redacted(entry)]
    helper = vault.search_helper
    pending = None
    # The helper's share (`HELPER_SHARE`), less its pipe's cost, with what `meanwhile` (the
    # custody entry) costs this thread counted as hits this thread shows.
    extra = HELPER_MEANWHILE_HITS if meanwhile is not None else 0
    share = min(len(plain), max(0, int((len(plain) - HELPER_HEAD_START + extra) * HELPER_SHARE)))
    # The helper's part is unwrapped and sent first; this thread's part is unwrapped while
    # the helper works (`_Found.identity`).
    sent = [_showable(entry) for _, entry in plain[:share]]
    if helper is not None and len(plain) >= MIN_HELPED_HITS:
        pending = helper.submit(query_text, sent)
    try:
        if meanwhile is not None:
            meanwhile()
        own = [_showable(entry) for _, entry in plain[share:]]
        showable = sent + own
        shown = [show(vault.store, highlighter, one) for one in (own if pending else showable)]
    except BaseException:
        if pending is not None:
            pending.result()  # frees the helper for the next page; its answer is dropped
        raise
    if pending is not None:
        helped = pending.result()
        if helped is None:  # the helper failed: show its part here
            helped = [show(vault.store, highlighter, one) for one in sent]
        shown = helped + shown
    for one, result in zip(showable, shown, strict=True):
        for problem in result.problems:
            # Tampered or missing: `tvault verify` names it; the search still answers.
            log.error("item %s: %s cannot be read", one.item_id, problem)
    return {position: result for (position, _), result in zip(plain, shown, strict=True)}


def _showable(entry: _Found) -> Showable:
    return Showable(
        item_id=entry.item.id,
        identity=entry.identity,
        sealed_meta=entry.item.sealed_meta,
        text_object=entry.item.text_object,
        language=_language(entry),
    )


def _show(vault: Vault, highlighter: Highlighter, entry: _Found, shown: Shown | None) -> SearchHit:
    """Return the hit as the principal may see it. `shown` is the title and snippet of a hit
    without a redaction obligation (`_show_unredacted`)."""
    item = entry.item
    language = _language(entry)
    snippet = None
    redacted = _redacted(entry)
    if redacted:
        title: str | None = REDACTED
        words = _identity_words(entry)
        text = _text(vault, entry)
        if words is not None and text is not None:
            cleaned = redact(text, words, REDACTED)
            snippet = highlighter.snippet(cleaned, language, max_words=SNIPPET_WORDS)
    else:
        assert shown is not None  # every unredacted hit was shown by `_show_unredacted`
        title, snippet = shown.title, shown.snippet
    return SearchHit(
        item_id=item.id,
        case_id=item.case_id,
        kind=item.kind,
        language=language,
        tags=tuple(item.tags),
        created_at=item.created_at,
        score=entry.hit.score,
        title=title,
        snippet=snippet,
        redacted=redacted,
    )


def _identity_words(entry: _Found) -> frozenset[str] | None:
    """The folded words of the item's identity fields; None if none are recorded or they do
    not open (then nothing of the text may be shown)."""
    if entry.fields is None:
        return None
    try:
        fields = open_json(entry.fields, entry.identity)
    except keys.UnsealError:
        log.error("item %s: identity fields do not open", entry.item.id)
        return None
    return identity_words(fields)


def _language(entry: _Found) -> str | None:
    # The index's: for an item with identity fields it was detected without their words, and
    # it is the language the engine stemmed the text in (promise 11; `vault.indexing`).
    return entry.hit.language


def _uncount(facets: dict[str, dict[str, int]], hit: Hit, item: _Item | None) -> None:
    language = hit.language or UNDETERMINED_LANGUAGE
    values = {"case": [hit.case_id], "kind": [hit.kind], "language": [language]}
    if item is not None:
        values["tag"] = list(item.tags)
        values["year"] = [str(item.created_at.year)]
    for name, keys_ in values.items():
        counts = facets.get(name)
        if counts is None:
            continue
        for key in keys_:
            if key in counts:
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]


def _text(vault: Vault, entry: _Found) -> str | None:
    if entry.item.text_object is None:  # not extracted (yet)
        return None
    try:
        return read_sealed_text(vault.store, entry.item.text_object, entry.identity)
    except (keys.UnsealError, StorageError) as exc:
        # Tampered or missing: `tvault verify` names it; the search still answers.
        log.error("item %s: extracted text cannot be read (%s)", entry.item.id, type(exc).__name__)
        return None


def _record(
    vault: Vault,
    principal: Principal,
    request: SearchRequest,
    ids: list[str],
    page: SearchResults,
) -> None:
    """Append the custody entry of a search that returns `ids` with `page`'s counts."""
    recipient = keys.recipient_of(vault.keyring.secret(METADATA_IDENTITY).decode("ascii"))
    sealed = seal_json(
        {
            "query": request.text,
            "cases": sorted(request.cases),
            "kinds": sorted(request.kinds),
            "languages": sorted(request.languages),
            "tags": sorted(request.tags),
            "date_from": request.date_from.isoformat() if request.date_from else None,
            "date_to": request.date_to.isoformat() if request.date_to else None,
        },
        recipient,
    )
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.SEARCH,
            details={
                "results": ids,
                "total": page.total,
                "page": page.page,
                "page_size": page.page_size,
            },
            sealed_details=sealed,
        )
