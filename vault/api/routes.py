"""Routes of the API: the public ones, and `/v1`, where every route needs a token."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from policies import actions
from vault import idempotency, jobs, ocr, readiness
from vault.api import docs_pages, refusals
from vault.api.deposit_doc import deposit_openapi
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal
from vault.api.disposition import attachment
from vault.api.jobs_routes import router as jobs_router
from vault.api.problems import MEDIA_TYPE
from vault.api.schemas import CaseIn, CaseOut, DepositOut, GrantIn, ItemOut, Me
from vault.api.streaming import ReadAheadResponse
from vault.api.upload import deposit_multipart, deposit_raw, raw_fields
from vault.cases import create_case, grant, list_cases
from vault.deposit import CommitGuard, DepositResult
from vault.extraction import detected_languages
from vault.headers import refuse_sealed_in_query
from vault.retrieve import ItemView, download, list_items, show_item
from vault.token_keys import TokenKeys
from vault.tokens import jwks

# DESIGN.md promise 4: the only routes without a token, listed in one place. (FastAPI serves
# /openapi.json itself; `vault.app` keeps it and nothing else.) `/docs`, `/redoc` and their
# vendored assets come from `vault.api.docs_pages`, served offline from the vault itself.
public = APIRouter()
public.include_router(docs_pages.router)
# Every other route is mounted under the auth dependency.
v1 = APIRouter(prefix="/v1", dependencies=[Depends(get_principal)])


@public.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@public.get("/readyz", responses={503: {"description": "a dependency is not reachable"}})
async def readyz(vault: VaultDep) -> JSONResponse:
    """Readiness: database, object store, index and extractor each answered within 2 s.

    503 with an RFC 9457 problem naming each failing dependency otherwise (never why: an error
    message may quote a password or a path; the server's log has the error's type).
    """
    status, body = readiness.answer(await run_in_threadpool(readiness.check, vault))
    media_type = "application/json" if status == 200 else MEDIA_TYPE
    return JSONResponse(body, status_code=status, media_type=media_type)


@public.get("/.well-known/jwks.json")
async def jwks_document(request: Request) -> dict[str, Any]:
    """The vault's token verification keys (RFC 7517 JWK Set), each with its `kid`: the current
    one and, after a rotation, the previous one until its last token has expired."""
    keys: TokenKeys = request.app.state.token_keys
    return jwks(await run_in_threadpool(keys.published))


@v1.get("/me")
def me(principal: CurrentPrincipal) -> Me:
    """Who the token speaks for."""
    return Me(name=principal.subject, roles=sorted(principal.roles))


@v1.post("/cases", status_code=201)
def post_case(body: CaseIn, vault: VaultDep, principal: CurrentPrincipal) -> CaseOut:
    """Create a case (custodians and therapists)."""
    return CaseOut(**dataclasses.asdict(create_case(vault, principal, body.name)))


@v1.get("/cases")
def get_cases(vault: VaultDep, principal: CurrentPrincipal) -> list[CaseOut]:
    """The cases the caller may see."""
    return [CaseOut(**dataclasses.asdict(c)) for c in list_cases(vault, principal)]


@v1.post("/cases/{case_id}/grants", status_code=204)
def post_grant(
    case_id: str, body: GrantIn, vault: VaultDep, principal: CurrentPrincipal
) -> Response:
    """Grant an account a role on a case (custodians)."""
    grant(vault, principal, case_id, body.user, body.role)
    return Response(status_code=204)


def _item(view: ItemView) -> ItemOut:
    data = dataclasses.asdict(view)
    data["tags"], data["consent"] = list(view.tags), list(view.consent)
    return ItemOut(**data)


@v1.get("/cases/{case_id}/items")
def get_items(case_id: str, vault: VaultDep, principal: CurrentPrincipal) -> list[ItemOut]:
    """The items of a case the caller may read, with their ingest state."""
    views = list_items(vault, principal, case_id)
    with vault.sessions() as session:
        states = jobs.ingest_states(session, [v.id for v in views])
        detected = detected_languages(session, [v.id for v in views])
        ocr_reports = ocr.reports(session, [v.id for v in views])
    return [
        _item(v).model_copy(
            update={
                "detected_language": detected.get(v.id),
                "state": states[v.id].state.value,
                "state_reason": states[v.id].reason,
                "steps": ocr.steps(states[v.id], ocr_reports.get(v.id)),
                "ocr": ocr_reports.get(v.id),
            }
        )
        for v in views
    ]


@v1.post(
    "/cases/{case_id}/items",
    status_code=201,
    response_model=DepositOut,
    openapi_extra=deposit_openapi(),
)
async def post_item(
    case_id: str, request: Request, vault: VaultDep, principal: CurrentPrincipal
) -> DepositOut | Response:
    """Deposit a file, streamed.

    Raw body (any content type but multipart): metadata in `Tvault-*` headers (`Tvault-Kind`,
    `-Title`, `-Language`, `-Consent`, `-Tags`, `-Filename`, `-Notes`; percent-encoded UTF-8;
    lists comma-separated). `multipart/form-data`: the same names as fields, before one part
    named `file`. Title, filename and notes in the query string are refused (400): proxies log
    URLs (vault.headers).

    Duplicates: the answer names in `duplicate_of` the earliest item of the case with the same
    SHA-256 that the caller may see; `Tvault-Duplicates: refuse` refuses such a deposit instead
    (409, nothing stored). `Idempotency-Key: "<random>"` makes a retry safe: the same key and
    bytes get the first answer again (`Idempotent-Replayed: true`), other bytes 422, a key still
    in flight 409; keys expire after 24 hours (vault.idempotency, docs/usage.md).
    """
    request.state.attempted = actions.ITEM_DEPOSIT  # its refusals are `deposit refused`
    refuse_sealed_in_query(request.query_params)

    async def deposit(guard: CommitGuard | None = None) -> DepositResult:
        # Too large, malformed or interrupted: a `deposit refused` entry (vault.api.refusals).
        async with refusals.recorded(vault, principal, case_id):
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                return await deposit_multipart(vault, principal, case_id, request, guard)
            fields = raw_fields(request, case_id)
            return await deposit_raw(vault, principal, fields, request, guard)

    key = idempotency.parse(request.headers.getlist(idempotency.HEADER))
    if key is not None:
        # vault.idempotency: a retry under the same key gets the first answer, byte for byte.
        status, body, again = await idempotency.deposit(vault, principal, key, case_id, deposit)
        headers = {idempotency.REPLAYED: "true"} if again else None
        return Response(body, status, media_type="application/json", headers=headers)
    result = await deposit()
    return DepositOut(
        id=result.item_id, size=result.size, sha256=result.sha256, duplicate_of=result.duplicate_of
    )


@v1.get("/items/{item_id}")
def get_item(item_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ItemOut:
    """An item's metadata, sealed fields opened for those allowed to read them; ingest state."""
    out = _item(show_item(vault, principal, item_id))
    with vault.sessions() as session:
        ingest = jobs.ingest_state(session, item_id)
        detected = detected_languages(session, [item_id]).get(item_id)
        report = ocr.reports(session, [item_id]).get(item_id)
    return out.model_copy(
        update={
            "detected_language": detected,
            "state": ingest.state.value,
            "state_reason": ingest.reason,
            "steps": ocr.steps(ingest, report),
            "ocr": report,
        }
    )


@v1.get("/items/{item_id}/content")
def get_content(item_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ReadAheadResponse:
    """The original, decrypted as it streams; the download is in the custody ledger."""
    result = download(vault, principal, item_id)
    digest = base64.b64encode(bytes.fromhex(result.item.sha256)).decode("ascii")
    headers = {
        "Content-Length": str(result.item.size),
        # RFC 9530: the digest of the whole representation, for the client to check.
        "Repr-Digest": f"sha-256=:{digest}:",
        # The original file name only for those who may read it (docs/usage.md), else the id.
        "Content-Disposition": attachment(
            None if result.redacted else result.item.filename, result.item.id
        ),
        "Cache-Control": "no-store",
    }
    return ReadAheadResponse(result.chunks, headers=headers)


# The job queue's routes (vault.api.jobs_routes), under the same authenticated prefix.
v1.include_router(jobs_router)
