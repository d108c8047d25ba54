"""Routes of the two-person rule under `/v1/approvals`: list, show, approve, deny.

Every route needs a token; `vault.approvals` asks the policy (custodians list and decide; the
requester never approves their own request). Requests themselves are made where the action
lives: `POST /v1/items/{id}/shred`, `DELETE /v1/items/{id}/hold` (vault/api/access_routes.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from vault import approval_kinds, approvals
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal

router = APIRouter(prefix="/v1", tags=["approvals"], dependencies=[Depends(get_principal)])

# The kinds this vault knows (imported for its registrations).
KINDS = (approval_kinds.SHRED, approval_kinds.LIFT_HOLD, approval_kinds.RETIRE_KEYS)


class ApprovalOut(BaseModel):
    """An approval: what it asks (`kind`, `subject`, structural `payload`), who asked, who said
    yes (`approvers`, the requester not counted) or no, and where it stands."""

    id: str
    kind: str
    subject: str
    case_id: str | None
    payload: dict[str, Any]
    state: str
    quorum: int
    requested_by: str
    requested_at: datetime
    approvers: list[str]
    denied_by: str | None
    decided_at: datetime | None
    outcome: dict[str, Any] | None
    has_note: bool


class ApprovalDetailOut(ApprovalOut):
    """An approval with its sealed words opened: the request's note, the denial's reason."""

    note: str | None
    denial_reason: str | None


class DenyIn(BaseModel):
    """Why the request is refused (free text, sealed at rest and in the ledger)."""

    reason: str = Field(min_length=1, max_length=approvals.MAX_TEXT)


def approval_out(record: approvals.ApprovalRecord) -> ApprovalOut:
    """Return the API shape of `record`."""
    return ApprovalOut(**approvals.as_dict(record))


@router.get("/approvals")
def get_approvals(
    vault: VaultDep,
    principal: CurrentPrincipal,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> list[ApprovalOut]:
    """Approvals, newest first (custodians), only those in `state` if given."""
    return [approval_out(r) for r in approvals.list_approvals(vault, principal, state)]


@router.get("/approvals/{approval_id}")
def get_approval(
    approval_id: str, vault: VaultDep, principal: CurrentPrincipal
) -> ApprovalDetailOut:
    """One approval, with its note and denial reason opened (custodians)."""
    record = approvals.show(vault, principal, approval_id)
    text = approvals.texts(vault, principal, approval_id)
    return ApprovalDetailOut(
        **approvals.as_dict(record), note=text.note, denial_reason=text.denial_reason
    )


@router.post("/approvals/{approval_id}/approve")
def post_approve(approval_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ApprovalOut:
    """Approve (never one's own request); the action runs in this call once the quorum is met."""
    return approval_out(approvals.approve(vault, principal, approval_id))


@router.post("/approvals/{approval_id}/deny")
def post_deny(
    approval_id: str, body: DenyIn, vault: VaultDep, principal: CurrentPrincipal
) -> ApprovalOut:
    """Refuse a pending request (its requester may withdraw it so); nothing runs."""
    return approval_out(approvals.deny(vault, principal, approval_id, body.reason))
