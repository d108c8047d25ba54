"""tus 1.0 resumable uploads (core protocol, creation and termination) under `/v1/uploads`.

A field office on a poor link sends a file in as many PATCH requests as it takes; a HEAD after a
cut says where to resume. `vault.tus` writes the upload sealed, in the final form of the item's
object, as it arrives and, at the last byte, commits it under the same rules as
`POST /v1/cases/{id}/items` (`vault.deposit.adopt`).
Authenticated by bearer token like the rest of `/v1`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from email.utils import formatdate

import anyio
from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response
from starlette.requests import ClientDisconnect

from policies import Principal
from vault import tus
from vault.api.deps import CurrentPrincipal, VaultDep
from vault.deposit import FIELDS, DepositResult
from vault.errors import BadField, VaultError

VERSION = "1.0.0"
OFFSET_TYPE = "application/offset+octet-stream"
# Keys tus clients add on their own (tus-js-client: `filetype`); not deposit metadata.
IGNORED_METADATA = frozenset({"filetype"})
# A signed deposit's statement and signature (vault.signatures), as text: not deposit fields.
SIGNED_METADATA = frozenset({"statement", "signature"})
BATCH = 1024 * 1024  # bytes sealed per hand-off to a worker thread


class UnsupportedVersion(VaultError):
    """The client speaks another version of tus."""

    code = "precondition-failed"


def _headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": VERSION, "Cache-Control": "no-store", **extra}


def _check_version(request: Request) -> None:
    # Also the CSRF defence of a browser's session: a cross-site form cannot send this header.
    if request.headers.get("tus-resumable") != VERSION:
        raise UnsupportedVersion(f"Tus-Resumable: {VERSION} is required")


def _number(request: Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.isdigit() or len(raw) > 20:
        raise BadField(name.lower(), "a non-negative integer is required")
    return int(raw)


async def _receive(request: Request, part: tus.Patch) -> None:
    """Seal the body into `part`, `BATCH` bytes per hand-off to a worker thread. Unlike the
    plain deposit, bytes that arrived before a dropped connection are sealed too: they are
    what the client resumes after."""
    batch: list[bytes] = []
    held = 0
    try:
        async for chunk in request.stream():
            batch.append(chunk)
            held += len(chunk)
            if held >= BATCH:
                await to_thread.run_sync(part.write, b"".join(batch))
                batch, held = [], 0
    except ClientDisconnect:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(part.write, b"".join(batch))
        raise
    await to_thread.run_sync(part.write, b"".join(batch))


def _settle(part: tus.Patch) -> tuple[int, DepositResult | None]:
    return part.close(), part.finish()


def parse_metadata(raw: str | None) -> dict[str, str]:
    """Return the deposit fields of an `Upload-Metadata` header (`key base64,key base64`).

    Raises `BadField` for a malformed pair, a key given twice or a value that is not UTF-8.
    """
    fields: dict[str, str] = {}
    for pair in (raw or "").split(","):
        if not pair.strip():
            continue
        key, _, value = pair.strip().partition(" ")
        if key in fields:
            raise BadField("upload-metadata", f"{key!r} given twice")
        try:
            text = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadField("upload-metadata", f"{key!r} is not base64 of UTF-8") from None
        if key not in IGNORED_METADATA:
            fields[key] = text
    return fields


def routes(prefix: str, principal_of: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """The tus routes under `prefix`, for the principal that `principal_of` (a FastAPI
    dependency) finds: a bearer token for `/v1/uploads`, the web session for `/uploads`."""
    router = APIRouter(prefix=prefix, tags=["uploads"])
    # A default, not an `Annotated` alias: a name local to this function is not resolvable
    # from the postponed annotations FastAPI reads.
    caller = Depends(principal_of)

    @router.options("")
    def options(_caller: Principal = caller) -> Response:
        """What this server speaks (tus discovery)."""
        return Response(
            status_code=204,
            headers={
                "Tus-Resumable": VERSION,
                "Tus-Version": VERSION,
                "Tus-Extension": "creation,termination",
            },
        )

    @router.post("")
    def create(request: Request, vault: VaultDep, principal: Principal = caller) -> Response:
        """Create an upload: `Upload-Length` (checked against the size limit: 413) and the
        deposit's fields in `Upload-Metadata` (`case`, `kind`, `title`, `language`, `consent`,
        `tags`, `filename`, `notes`; a signed deposit's `statement` and `signature`, as text),
        checked and authorized now as a deposit would be."""
        _check_version(request)
        length = _number(request, "Upload-Length")
        fields = parse_metadata(request.headers.get("upload-metadata"))
        unknown = set(fields) - FIELDS - SIGNED_METADATA
        if unknown:
            raise BadField(sorted(unknown)[0], "unknown field")
        upload = tus.create(vault, principal, length, fields)
        return Response(
            status_code=201,
            headers=_headers(
                Location=f"{prefix}/{upload.id}",
                **{"Upload-Expires": formatdate(upload.expires, usegmt=True)},
            ),
        )

    @router.head("/{upload_id}")
    def head(
        upload_id: str, request: Request, vault: VaultDep, principal: Principal = caller
    ) -> Response:
        """Where to resume: `Upload-Offset` of `Upload-Length`."""
        _check_version(request)
        upload = tus.status(vault, principal, upload_id)
        return Response(
            status_code=200,
            headers=_headers(
                **{
                    "Upload-Offset": str(upload.offset),
                    "Upload-Length": str(upload.length),
                    "Upload-Expires": formatdate(upload.expires, usegmt=True),
                }
            ),
        )

    @router.patch("/{upload_id}")
    async def patch(
        upload_id: str, request: Request, vault: VaultDep, principal: Principal = caller
    ) -> Response:
        """Append the body at `Upload-Offset` (409 unless it is exactly where the upload
        stands). The bytes are sealed as they stream in; what arrived before a dropped
        connection is kept. At the last byte the file is deposited and the answer names the
        item (`Tvault-Item`, `Tvault-Sha256`); a deposit that fails removes the upload."""
        _check_version(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_TYPE:
            return Response(status_code=415, headers=_headers())
        offset = _number(request, "Upload-Offset")
        part = await to_thread.run_sync(tus.Patch, vault, principal, upload_id, offset)
        try:
            await _receive(request, part)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(part.close)
                if part.complete:
                    # Every byte arrived before the cut: deposit it all the same, rather than
                    # leave an upload no client would send again.
                    await to_thread.run_sync(part.finish)
            raise
        # One hand-off to a worker thread for both: a PATCH's fixed cost counts, 256 of them
        # make a GiB in the page's PATCHes.
        new_offset, result = await to_thread.run_sync(_settle, part)
        extra = {"Upload-Offset": str(new_offset)}
        if result is not None:
            extra |= {"Tvault-Item": result.item_id, "Tvault-Sha256": result.sha256}
        return Response(status_code=204, headers=_headers(**extra))

    @router.delete("/{upload_id}")
    def delete(
        upload_id: str, request: Request, vault: VaultDep, principal: Principal = caller
    ) -> Response:
        """Give an upload up (termination extension)."""
        _check_version(request)
        tus.terminate(vault, principal, upload_id)
        return Response(status_code=204, headers=_headers())

    return router


async def _token_principal(principal: CurrentPrincipal) -> Principal:
    return principal


router = routes("/v1/uploads", _token_principal)
