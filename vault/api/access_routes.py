"""Routes of access and consent under `/v1`: grants, consent, identity, renditions, shredding.

Shredding and lifting a hold are requests under the two-person rule (vault/api/approval_routes.py).

Every route needs a token (mounted under the auth dependency) and every use case behind it asks
`policies.decide` through `vault.access.authorize`; nothing here checks a role.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from vault import approval_kinds, approvals, consent, grants, identity, shred
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal
from vault.approvals import ApprovalRecord
from vault.errors import BadField, Conflict

router = APIRouter(prefix="/v1", tags=["access"], dependencies=[Depends(get_principal)])


class GrantOut(BaseModel):
    case_id: str
    user: str
    role: str
    granted_by: str
    granted_at: datetime


class RevokedOut(BaseModel):
    roles: list[str]


class ConsentIn(BaseModel):
    """A consent change: scopes to grant and to withdraw, what it rests on (`basis`:
    `consent_form` with the signed form in base64, or `depositor_confirmation`), and an optional
    free-text `note` (sealed in the ledger)."""

    grant: list[str] = Field(default_factory=list, max_length=16)
    withdraw: list[str] = Field(default_factory=list, max_length=16)
    basis: str | None = Field(default=None, max_length=64)
    form_base64: str | None = None
    note: str | None = Field(default=None, max_length=consent.MAX_NOTE)


class ConsentOut(BaseModel):
    version: int
    scopes: list[str]
    recorded_by: str
    recorded_at: datetime
    has_form: bool


class ShredIn(BaseModel):
    """Why an item should be shredded; `note` (sealed) is required for reason "other"."""

    reason: Literal["consent_withdrawn", "court_order", "duplicate", "other"]
    note: str | None = Field(default=None, max_length=approvals.MAX_TEXT)


class HoldIn(BaseModel):
    """Why the item is held (optional; sealed in the ledger entry)."""

    reason: str | None = Field(default=None, max_length=shred.MAX_HOLD_REASON)


class CaseHoldIn(BaseModel):
    """Why every item of the case is held (sealed in each item's `legal hold` entry)."""

    reason: str = Field(min_length=1, max_length=shred.MAX_HOLD_REASON)


class CaseHoldOut(BaseModel):
    """What holding a case did: the items held now, how many were held already, how many are
    crypto-shredded (left alone). Items deposited later are not held."""

    case_id: str
    held: list[str]
    already: int
    shredded: int


class HoldOut(BaseModel):
    """The hold after the call; lifting one asks for an `approval` instead of changing it."""

    held: bool
    changed: bool
    approval: ApprovalRecord | None = None


class RenditionOut(BaseModel):
    size: int
    sha256: str


def _consent(version: consent.ConsentVersion) -> ConsentOut:
    data = dataclasses.asdict(version)
    data["scopes"] = list(version.scopes)
    return ConsentOut(**data)


@router.get("/cases/{case_id}/grants")
def get_grants(case_id: str, vault: VaultDep, principal: CurrentPrincipal) -> list[GrantOut]:
    """The roles granted on a case (custodians)."""
    return [
        GrantOut(**dataclasses.asdict(g)) for g in grants.list_grants(vault, principal, case_id)
    ]


@router.delete("/cases/{case_id}/grants/{user}")
def delete_grant(
    case_id: str,
    user: str,
    vault: VaultDep,
    principal: CurrentPrincipal,
    role: Annotated[str | None, Query()] = None,
) -> RevokedOut:
    """Revoke an account's role (or every role) on a case; effective on its next request."""
    return RevokedOut(roles=grants.revoke(vault, principal, case_id, user, role))


@router.get("/items/{item_id}/consent")
def get_consent(item_id: str, vault: VaultDep, principal: CurrentPrincipal) -> list[ConsentOut]:
    """Every version of an item's consent record, oldest first."""
    return [_consent(v) for v in consent.history(vault, principal, item_id)]


@router.post("/items/{item_id}/consent", status_code=201)
def post_consent(
    item_id: str, body: ConsentIn, vault: VaultDep, principal: CurrentPrincipal
) -> ConsentOut:
    """Grant or withdraw consent scopes (a new version) on a recorded basis; effective on the
    next request. Only those who see the item may; an item they cannot see is "not found"."""
    form = None
    if body.form_base64 is not None:
        try:
            form = base64.b64decode(body.form_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadField("form_base64", "not base64") from exc
    version = consent.change_consent(
        vault,
        principal,
        item_id,
        grant=body.grant,
        withdraw=body.withdraw,
        basis=body.basis,
        form=form,
        note=body.note,
    )
    return _consent(version)


@router.get("/items/{item_id}/consent/{version}/form")
def get_consent_form(
    item_id: str, version: int, vault: VaultDep, principal: CurrentPrincipal
) -> Response:
    """The consent form recorded with a version (sealed at rest)."""
    data = consent.consent_form(vault, principal, item_id, version)
    headers = {"Content-Disposition": "attachment", "Cache-Control": "no-store"}
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.put("/items/{item_id}/identity", status_code=204)
def put_identity(
    item_id: str, body: dict[str, Any], vault: VaultDep, principal: CurrentPrincipal
) -> Response:
    """Record the survivor's identity fields of an item (sealed at rest)."""
    identity.set_identity(vault, principal, item_id, body)
    return Response(status_code=204)


@router.get("/items/{item_id}/identity")
def get_identity(item_id: str, vault: VaultDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The identity fields, "[redacted]" for those the policy obliges to redact."""
    return identity.show_identity(vault, principal, item_id)


@router.put("/items/{item_id}/redacted", status_code=201)
async def put_redacted(
    item_id: str, request: Request, vault: VaultDep, principal: CurrentPrincipal
) -> RenditionOut:
    """Attach a redacted rendition (raw body, streamed): what redacted readers download."""
    upload = await to_thread.run_sync(identity.RenditionUpload.start, vault, principal, item_id)
    try:
        async for chunk in request.stream():
            if chunk:
                await to_thread.run_sync(upload.write, chunk)
        rendition = await to_thread.run_sync(upload.commit)
    except BaseException:
        upload.abort()
        raise
    return RenditionOut(size=rendition.size, sha256=rendition.sha256)


@router.post("/items/{item_id}/shred", status_code=202)
def post_shred(
    item_id: str, body: ShredIn, vault: VaultDep, principal: CurrentPrincipal
) -> ApprovalRecord:
    """Ask to crypto-shred an item (custodians; refused under legal hold): it happens when
    another custodian approves (`POST /v1/approvals/{id}/approve`)."""
    return approval_kinds.request_shred(vault, principal, item_id, body.reason, body.note)


@router.put("/items/{item_id}/hold")
def put_hold(
    item_id: str, vault: VaultDep, principal: CurrentPrincipal, body: HoldIn | None = None
) -> HoldOut:
    """Put an item under legal hold (custodians), with an optional reason (sealed)."""
    reason = body.reason if body is not None else None
    return HoldOut(held=True, changed=shred.set_hold(vault, principal, item_id, True, reason))


@router.post("/cases/{case_id}/holds")
def post_case_holds(
    case_id: str, body: CaseHoldIn, vault: VaultDep, principal: CurrentPrincipal
) -> CaseHoldOut:
    """Put every item the case has now under legal hold (custodians), with one reason (sealed):
    one `legal hold` entry per item held; held and shredded items are skipped. Items deposited
    into the case later are not held."""
    done = shred.hold_case(vault, principal, case_id, body.reason)
    return CaseHoldOut(
        case_id=done.case_id, held=list(done.held), already=done.already, shredded=done.shredded
    )


@router.delete("/items/{item_id}/hold")
def delete_hold(
    item_id: str, vault: VaultDep, principal: CurrentPrincipal, response: Response
) -> HoldOut:
    """Ask to lift an item's legal hold (custodians): it is lifted when another custodian
    approves. An item not under hold is answered as such, with nothing asked."""
    try:
        record = approval_kinds.request_lift_hold(vault, principal, item_id)
    except Conflict:
        if shred.is_held(vault, item_id):
            raise  # already asked: the error names the open approval
        return HoldOut(held=False, changed=False)
    response.status_code = 202
    return HoldOut(held=True, changed=False, approval=record)
