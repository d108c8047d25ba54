"""`POST /v1/search`: ranked hits with snippets, facet counts and pages, inside the caller's scope.

The query travels in the JSON body, not the URL: URLs end up in proxy logs and browser
history, and a query may name a survivor (promise 1). Errors name fields and positions, never
the text typed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from search.query import MAX_QUERY_CHARS
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal
from vault.searching import SearchRequest, search

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(get_principal)])

Names = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100)]


class SearchIn(BaseModel):
    """A search: the query (docs/search.md "The query language"), filters and the page."""

    q: str = Field(default="", max_length=MAX_QUERY_CHARS, description="The query; empty: all.")
    cases: Names = []
    kinds: Names = []
    languages: Names = []
    tags: Names = []
    date_from: date | None = None
    date_to: date | None = None
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)


class HitOut(BaseModel):
    """One hit; `snippet` is HTML with the matched words in `<mark>` (everything else escaped).

    `title` and `snippet` are null when the item has no extracted text yet or when they are
    withheld under the `redact_identities` obligation (`redacted`)."""

    item_id: str
    case_id: str
    kind: str
    language: str | None
    tags: list[str]
    created_at: datetime
    score: float
    title: str | None
    snippet: str | None
    redacted: bool


class SearchOut(BaseModel):
    """A page of hits, the total and facet counts (case, kind, language, tag, year), all
    counted inside the caller's scope."""

    total: int
    page: int
    page_size: int
    hits: list[HitOut]
    facets: dict[str, dict[str, int]]


@router.post("/search")
def post_search(
    body: SearchIn, vault: VaultDep, principal: CurrentPrincipal, request: Request
) -> SearchOut:
    """Search the items the caller may read; the search is recorded in the custody ledger."""
    query = SearchRequest(
        text=body.q,
        cases=frozenset(body.cases),
        kinds=frozenset(body.kinds),
        languages=frozenset(body.languages),
        tags=frozenset(body.tags),
        date_from=body.date_from,
        date_to=body.date_to,
        page=body.page,
        page_size=body.page_size,
    )
    # The app's search gate (`vault.compose.gatekeeping`): TVAULT_SEARCH_CONCURRENCY at once.
    with request.app.state.search_gate:
        results = search(vault, principal, query)
    hits = [
        HitOut(
            item_id=hit.item_id,
            case_id=hit.case_id,
            kind=hit.kind,
            language=hit.language,
            tags=list(hit.tags),
            created_at=hit.created_at,
            score=hit.score,
            title=hit.title,
            snippet=hit.snippet,
            redacted=hit.redacted,
        )
        for hit in results.hits
    ]
    return SearchOut(
        total=results.total,
        page=results.page,
        page_size=results.page_size,
        hits=hits,
        facets={name: dict(counts) for name, counts in results.facets.items()},
    )
