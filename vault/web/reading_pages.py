"""The reader's pages: search (a POST: the query never goes in a URL), an item with its
metadata and digest, its extracted text behind a content notice, and its download."""

from __future__ import annotations

import base64
import mimetypes
from typing import Final

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from search.query import MAX_QUERY_CHARS
from vault import jobs
from vault.api.deps import VaultDep
from vault.errors import BadField
from vault.retrieve import download, read_text, show_item
from vault.searching import search
from vault.web import search_filters
from vault.web.deposit_pages import KIND_NAMES, STATE_NAMES
from vault.web.deps import CheckedForm, Signed, signed_in
from vault.web.render import render, translate

# Every page here needs a signed-in session (promise 4: deny by default).
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

PAGE_SIZE: Final = 20
MAX_PAGE: Final = 10_000
# Previews on the item page (blurred until clicked): raster images and video the browser plays
# itself. Never SVG (it may carry script) nor anything a browser would render as a document.
PREVIEW_TYPES: Final = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/webm",
        "video/ogg",
    }
)


def preview_type(filename: str | None) -> str | None:
    """Return the media type of a preview of a file named `filename`, or None for none.

    Only the original's name tells (media items are not read by the extractors); a name
    redacted by the policy gives none, and the redacted rendition is no image.
    """
    if not filename:
        return None
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed if guessed in PREVIEW_TYPES else None


@pages.get("/search")
def search_form(request: Request, current: Signed) -> Response:
    """The search form, with its query help and filters."""
    picked = search_filters.Chosen()
    choices = search_filters.choices(request, picked, None)
    return render(request, "search.html", q="", picked=picked, choices=choices, results=None)


@pages.post("/search")
def search_results(
    request: Request, vault: VaultDep, current: Signed, form: CheckedForm
) -> Response:
    """Run a search inside the reader's scope (a `search` entry, the query sealed); one page,
    with the facet counts of the whole result beside the filters."""
    text = str(form.get("q", ""))
    if len(text) > MAX_QUERY_CHARS:
        raise BadField("q", f"at most {MAX_QUERY_CHARS} characters")
    raw_page = str(form.get("page", "1"))
    page = int(raw_page) if raw_page.isdigit() and 1 <= int(raw_page) <= MAX_PAGE else 1
    picked = search_filters.chosen(form)
    results = search(vault, current.principal, picked.request(text, page, PAGE_SIZE))
    hits = [
        (
            hit,
            Markup(hit.snippet) if hit.snippet else None,  # noqa: S704 (the highlighter escapes all but <mark>)
            translate(request, KIND_NAMES.get(hit.kind, hit.kind)),
        )
        for hit in results.hits
    ]
    last = max(1, -(-results.total // PAGE_SIZE))
    return render(
        request,
        "search.html",
        q=text,
        picked=picked,
        choices=search_filters.choices(request, picked, results.facets),
        results=results,
        hits=hits,
        last=last,
    )


@pages.get("/items/{item_id}")
def item(item_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """An item: metadata (redacted as the policy says), ingest state, digest and download;
    the extracted text is one click further, behind a content notice."""
    view = show_item(vault, current.principal, item_id)
    with vault.sessions() as session:
        state = jobs.ingest_state(session, item_id).state.value
    return render(
        request,
        "item.html",
        item=view,
        kind=translate(request, KIND_NAMES.get(view.kind, view.kind)),
        state=translate(request, STATE_NAMES.get(state, state)),
        preview=(preview_type(view.filename) or "").split("/")[0],
    )


@pages.get("/items/{item_id}/text")
def item_text(item_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """The item's extracted text (a `decryption` entry), after the content notice."""
    text = read_text(vault, current.principal, item_id)
    return render(request, "item_text.html", item_id=item_id, text=text)


@pages.get("/items/{item_id}/download")
async def item_download(item_id: str, vault: VaultDep, current: Signed) -> Response:
    """The original, streamed as it is decrypted; its digest in `Repr-Digest` (RFC 9530)."""
    result = await run_in_threadpool(download, vault, current.principal, item_id)
    digest = base64.b64encode(bytes.fromhex(result.item.sha256)).decode("ascii")
    headers = {
        "Content-Length": str(result.item.size),
        "Repr-Digest": f"sha-256=:{digest}:",
        # The id only: the original filename is sealed, and browsers keep download names.
        "Content-Disposition": f'attachment; filename="{item_id}"',
    }
    return StreamingResponse(result.chunks, media_type="application/octet-stream", headers=headers)


@pages.get("/items/{item_id}/preview")
async def item_preview(
    item_id: str,
    vault: VaultDep,
    current: Signed,
    range_: str | None = Header(default=None, alias="Range", max_length=200),
) -> Response:
    """The original as the item page's blurred preview: the same use case as the download (the
    same policy and `decryption` entry), shown inline when its name says image or video.

    One `bytes=` range is answered with 206 (a video player skips ahead with it), one past the
    end with 416 (`vault.web.errors`); several ranges get the whole file with 200. Each request
    is one `decryption` entry, its range in `from` and `to`."""
    result = await run_in_threadpool(download, vault, current.principal, item_id, range_)
    media_type = None if result.redacted else preview_type(result.item.filename)
    headers = {"Content-Length": str(result.length), "Accept-Ranges": "bytes"}
    if media_type is None:
        headers["Content-Disposition"] = f'attachment; filename="{item_id}"'
    else:
        headers["Content-Disposition"] = "inline"
    status = 200
    if result.partial:
        status = 206
        headers["Content-Range"] = f"bytes {result.start}-{result.end}/{result.item.size}"
    return StreamingResponse(
        result.chunks,
        status_code=status,
        media_type=media_type or "application/octet-stream",
        headers=headers,
    )
