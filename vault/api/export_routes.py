"""Routes of exports to commissions (issue 18) and of commissions' recipient keys.

`POST /v1/exports` asks; `GET /v1/exports`, `GET /v1/exports/{id}` show (with a live preview
while it waits); `POST /v1/exports/{id}/approve|deny` decide (a custodian other than the
requester); `POST /v1/exports/{id}/rebuild` asks again after a revocation or expiry;
`GET /v1/exports/{id}/download` sends the age file, with a single HTTP Range (206, 416) so that a
broken download resumes. `POST|GET /v1/users/{name}/recipients`, `DELETE .../{key_id}` manage
the keys a commission's exports are encrypted to. Every route needs a token.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from vault import exports, recipients
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal
from vault.api.problems import problem
from vault.ranges import RangeNotSatisfiable

router = APIRouter(prefix="/v1", tags=["exports"], dependencies=[Depends(get_principal)])


class ExportIn(BaseModel):
    """An export to ask for; `purpose`, `legal_basis` and `query` are sealed at rest."""

    case_id: str = Field(min_length=1, max_length=32)
    # No min_length: the use case refuses an empty or blank text with a message naming the
    # rule ("purpose: 1 to 2000 characters"); the schema's refusal named only the field.
    purpose: str = Field(max_length=exports.MAX_TEXT)
    legal_basis: str = Field(max_length=exports.MAX_TEXT)
    commission: str | None = Field(default=None, max_length=64)
    query: str | None = Field(default=None, max_length=exports.MAX_QUERY)
    kinds: list[str] = Field(default_factory=list, max_length=16)
    date_from: date | None = None
    date_to: date | None = None


class PreviewOut(BaseModel):
    items: int
    bytes: int
    by_kind: dict[str, int]
    consented: int
    not_consented: int
    redacted: int
    no_rendition: int
    shredded: int


class ExportOut(BaseModel):
    id: str
    case_id: str
    commission: str
    requested_by: str
    requested_at: datetime
    state: str
    reason: str | None
    approval_id: str | None
    kinds: list[str]
    date_from: date | None
    date_to: date | None
    has_query: bool
    items: int | None
    size: int | None
    sha256: str | None
    checkpoint_size: int | None
    built_at: datetime | None
    expires_at: datetime | None
    downloads: int
    summary: dict[str, Any] | None
    preview: PreviewOut | None


class ExportDetailOut(ExportOut):
    purpose: str
    legal_basis: str
    query: str | None


class DenyIn(BaseModel):
    """Why the export is refused (free text, sealed at rest and in the ledger)."""

    reason: str = Field(min_length=1, max_length=exports.MAX_TEXT)


class RecipientIn(BaseModel):
    """An age X25519 recipient (`age1...`) or an OpenSSH `ssh-ed25519` public key line."""

    key: str = Field(min_length=1, max_length=recipients.MAX_KEY)


class RecipientOut(BaseModel):
    key_id: str
    user: str
    key_type: str
    recipient: str
    added_by: str
    added_at: datetime


def _out(view: exports.ExportView) -> ExportOut:
    return ExportOut.model_validate(dataclasses.asdict(view))


@router.post("/exports", status_code=201)
def post_export(body: ExportIn, vault: VaultDep, principal: CurrentPrincipal) -> ExportOut:
    """Ask for an export of a case to a commission (the caller, or the one a custodian names).

    Refused, with nothing stored, when the commission holds no grant on the case, has no
    recipient keys, or when no item of the case (under the filters) may go to it.
    """
    request = exports.ExportRequest(**body.model_dump())
    return _out(exports.request(vault, principal, request))


@router.get("/exports")
def get_exports(
    vault: VaultDep,
    principal: CurrentPrincipal,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> list[ExportOut]:
    """Exports, newest first: custodians see all; others those they asked for or receive."""
    return [_out(v) for v in exports.list_exports(vault, principal, state)]


@router.get("/exports/{export_id}")
def get_export(export_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ExportDetailOut:
    """One export with its purpose and legal basis, and while it waits a preview: counts by
    kind, consent, redactions and total size (no content)."""
    return ExportDetailOut.model_validate(
        dataclasses.asdict(exports.detail(vault, principal, export_id))
    )


@router.post("/exports/{export_id}/approve")
def post_approve(export_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ExportOut:
    """Approve (a custodian other than the requester): the export is queued to be built."""
    return _out(exports.approve(vault, principal, export_id))


@router.post("/exports/{export_id}/deny")
def post_deny(
    export_id: str, body: DenyIn, vault: VaultDep, principal: CurrentPrincipal
) -> ExportOut:
    """Refuse the export; nothing is built."""
    return _out(exports.deny(vault, principal, export_id, body.reason))


@router.post("/exports/{export_id}/rebuild", status_code=201)
def post_rebuild(export_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ExportOut:
    """Ask again for an ended export (revoked, expired, failed, denied): a new export with the
    same case, filters, purpose and legal basis, waiting for a new approval."""
    return _out(exports.rebuild(vault, principal, export_id))


_BINARY: dict[str, Any] = {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
}
_PROBLEM: dict[str, Any] = {"application/problem+json": {"schema": {"type": "object"}}}
_WHOLE = {"description": "The SHA-256 of the whole file (RFC 9530)", "schema": {"type": "string"}}
_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole age file",
        "content": _BINARY,
        "headers": {
            "Repr-Digest": _WHOLE,
            "Accept-Ranges": {"description": "bytes", "schema": {"type": "string"}},
            "ETag": {"description": "The file's SHA-256, quoted", "schema": {"type": "string"}},
        },
    },
    206: {
        "description": "The range asked for (`Range: bytes=N-` resumes a broken download)",
        "content": _BINARY,
        "headers": {
            "Content-Range": {"description": "bytes START-END/SIZE", "schema": {"type": "string"}},
            "Repr-Digest": _WHOLE,
        },
    },
    409: {"description": "Not built yet, or failed (the state or reason)", "content": _PROBLEM},
    410: {"description": "Revoked or expired, with the reason", "content": _PROBLEM},
    416: {
        "description": "The range starts at or past the end",
        "content": _PROBLEM,
        "headers": {"Content-Range": {"description": "bytes */SIZE", "schema": {"type": "string"}}},
    },
}


@router.get("/exports/{export_id}/download", response_model=None, responses=_DOWNLOAD_RESPONSES)
def get_download(
    export_id: str,
    vault: VaultDep,
    principal: CurrentPrincipal,
    range_: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
) -> Response:
    """The sealed export (an age file for the commission's keys). `Range: bytes=N-` resumes;
    each download is a custody ledger entry. A revoked or expired export: 410 with the reason."""
    try:
        got = exports.download(vault, principal, export_id, range_)
    except RangeNotSatisfiable as exc:
        refused: JSONResponse = problem(416, exc.detail, exc.code)
        refused.headers["Content-Range"] = f"bytes */{exc.size}"
        return refused
    digest = base64.b64encode(bytes.fromhex(got.sha256)).decode("ascii")
    headers = {
        "Content-Length": str(got.end - got.start + 1),
        "Accept-Ranges": "bytes",
        # RFC 9530: the digest of the whole file, so a resumed download can be checked whole.
        "Repr-Digest": f"sha-256=:{digest}:",
        "ETag": f'"{got.sha256}"',
        "Content-Disposition": f'attachment; filename="{export_id}.tar.age"',
        "Cache-Control": "no-store",
    }
    status = 200
    if got.partial:
        status = 206
        headers["Content-Range"] = f"bytes {got.start}-{got.end}/{got.total}"
    return StreamingResponse(
        got.chunks, status_code=status, media_type="application/octet-stream", headers=headers
    )


@router.post("/users/{name}/recipients", status_code=201)
def post_recipient(
    name: str, body: RecipientIn, vault: VaultDep, principal: CurrentPrincipal
) -> RecipientOut:
    """Register a recipient key to the commission account NAME (custodians)."""
    view = recipients.add(vault, principal, name, body.key)
    return RecipientOut.model_validate(dataclasses.asdict(view))


@router.get("/users/{name}/recipients")
def get_recipients(name: str, vault: VaultDep, principal: CurrentPrincipal) -> list[RecipientOut]:
    """The recipient keys of NAME (custodians, and the commission itself)."""
    rows = recipients.list_recipients(vault, principal, name)
    return [RecipientOut.model_validate(dataclasses.asdict(r)) for r in rows]


@router.delete("/users/{name}/recipients/{key_id}", status_code=204)
def delete_recipient(
    name: str, key_id: str, vault: VaultDep, principal: CurrentPrincipal
) -> Response:
    """Remove a recipient key of NAME (custodians); exports built before keep theirs."""
    recipients.remove(vault, principal, name, key_id)
    return Response(status_code=204)
