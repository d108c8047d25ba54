"""`tvault search QUERY` (client, over the API) and `tvault reindex` (admin, on the vault)."""

from __future__ import annotations

import html
import os
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli.common import (
    DEFAULT_URL,
    FAILURE,
    JsonOption,
    TokenOption,
    UrlOption,
    VaultOption,
    api_client,
    call,
    check_case_id,
    emit,
    fail,
    open_local,
)

if TYPE_CHECKING:
    from rich.text import Text

# Helper processes opening sealed texts while this process indexes: one per spare core (on 2
# cores at light load one helper gave 2,365 vs 1,745 items/s; at load average 8 it was slower,
# 561 vs 757: bench/RESULTS.md).
DEFAULT_WORKERS = min(4, max(0, (os.cpu_count() or 1) - 1))
_MARK = re.compile(r"<mark>(.*?)</mark>", re.DOTALL)


def search(
    query: Annotated[str, typer.Argument(help="Query (docs/search.md); '' lists everything.")],
    case: Annotated[
        list[str] | None,
        typer.Option("--case", help="Case id; repeatable.", callback=check_case_id),
    ] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Item kind; repeatable.")] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Language; repeatable.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag; repeatable.")] = None,
    page: Annotated[int, typer.Option("--page", min=1)] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100)] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search the items you may read: ranked hits with snippets, and facet counts."""
    body = {
        "q": query,
        "cases": case or [],
        "kinds": kind or [],
        "languages": language or [],
        "tags": tag or [],
        "page": page,
        "page_size": page_size,
    }
    with api_client(url, token) as client:
        # POST: the query stays out of URLs, which proxies log.
        result = call(client, "POST", "/v1/search", json=body)
    if as_json:
        emit(result, True, "")
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    total, hits = result["total"], result["hits"]
    first = (result["page"] - 1) * result["page_size"] + 1
    if not hits:
        console.print(f"{total} results" + (f"; none on page {result['page']}" if total else ""))
    else:
        console.print(f"{total} results; {first}-{first + len(hits) - 1} shown")
    for hit in hits:
        head = Text(f"{hit['item_id']}  ", style="bold")
        head.append(
            f"case {hit['case_id']}  {hit['kind']}  {hit['language'] or '-'}  "
            f"{hit['created_at'][:10]}  score {hit['score']:.2f}"
        )
        console.print(head)
        if hit["redacted"]:
            console.print("    (title and snippet withheld: identities are redacted for you)")
            continue
        if hit["title"]:
            console.print(Text("    " + hit["title"], style="italic"))
        if hit["snippet"]:
            console.print(Text("    ").append_text(snippet_text(hit["snippet"])))
    for name, counts in result["facets"].items():
        if counts:
            listed = ", ".join(f"{key} ({count})" for key, count in counts.items())
            console.print(f"{name}: {listed}")


def snippet_text(snippet: str) -> Text:
    """Return a snippet's HTML as terminal text, the marked words in bold reverse."""
    from rich.text import Text

    out = Text()
    position = 0
    for match in _MARK.finditer(snippet):
        out.append(html.unescape(snippet[position : match.start()]))
        out.append(html.unescape(match.group(1)), style="bold reverse")
        position = match.end()
    out.append(html.unescape(snippet[position:]))
    return out


def reindex(
    vault_dir: VaultOption = None,
    workers: Annotated[
        int,
        typer.Option("--workers", min=0, help="Helper processes opening sealed texts (0: none)."),
    ] = DEFAULT_WORKERS,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the search index from the vault's sealed texts (stop `tvault serve` first)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from search import SearchError
    from vault.indexing import reindex as rebuild

    vault = open_local(vault_dir)
    try:
        console = Console(stderr=True)
        with Progress(
            TextColumn("reindex"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as bar:
            task = bar.add_task("reindex", total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                count = rebuild(vault, progress=tick, workers=workers)
            except SearchError as exc:
                fail(f"reindex failed: {exc}", FAILURE)
    finally:
        vault.close()
    emit({"indexed": count}, as_json, f"reindexed {count} items")
