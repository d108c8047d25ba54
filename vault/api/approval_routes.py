"""Routes of the two-person rule under `/v1/approvals`: list, show, approve, deny.

Every route needs a token; `vault.approvals` asks the policy (custodians list and decide; the
requester never approves their own request). Requests themselves are made where the action
lives: `POST /v1/items/{id}/shred`, `DELETE /v1/items/{id}/hold` (vault/api/access_routes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from vault import approval_kinds, approvals, exports
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal
from vault.approvals import ApprovalDetail, ApprovalRecord

router = APIRouter(prefix="/v1", tags=["approvals"], dependencies=[Depends(get_principal)])

# The kinds this vault knows (imported for its registrations).
KINDS = (
    approval_kinds.SHRED,
    approval_kinds.LIFT_HOLD,
    approval_kinds.RETIRE_KEYS,
    exports.EXPORT,
)


class DenyIn(BaseModel):
    """Why the request is refused (free text, sealed at rest and in the ledger)."""

    reason: str = Field(min_length=1, max_length=approvals.MAX_TEXT)


@router.get("/approvals")
def get_approvals(
    vault: VaultDep,
    principal: CurrentPrincipal,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> list[ApprovalRecord]:
    """Approvals, newest first (custodians), only those in `state` if given: what each asks
    (`kind`, `subject`, structural `payload`), who asked, who said yes (`approvers`, the
    requester not counted) or no, and where it stands."""
    return approvals.list_approvals(vault, principal, state)


@router.get("/approvals/{approval_id}")
def get_approval(approval_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ApprovalDetail:
    """One approval, with its note and denial reason opened (custodians)."""
    return approvals.detail(vault, principal, approval_id)


@router.post("/approvals/{approval_id}/approve")
def post_approve(approval_id: str, vault: VaultDep, principal: CurrentPrincipal) -> ApprovalRecord:
    """Approve (never one's own request); the action runs in this call once the quorum is met."""
    return approvals.approve(vault, principal, approval_id)


@router.post("/approvals/{approval_id}/deny")
def post_deny(
    approval_id: str, body: DenyIn, vault: VaultDep, principal: CurrentPrincipal
) -> ApprovalRecord:
    """Refuse a pending request (its requester may withdraw it so); nothing runs."""
    return approvals.deny(vault, principal, approval_id, body.reason)
