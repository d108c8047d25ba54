"""Routes of signed deposits: depositor keys, co-signatures, the origin a statement names.

A signed deposit itself goes through `POST /v1/cases/{case}/items` with the statement and its
signature in the `Tvault-Statement` and `Tvault-Signature` headers (base64; docs/signatures.md).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from policies import Resource, actions, kinds
from vault import signatures
from vault.access import authorize
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal

router = APIRouter(prefix="/v1", tags=["signatures"], dependencies=[Depends(get_principal)])


class OriginOut(BaseModel):
    """The origin a statement must name (the ledger's checkpoint origin)."""

    origin: str


class KeyIn(BaseModel):
    """A public key: `ed25519:<base64>` or an OpenSSH line (`ssh-ed25519 AAAA... comment`)."""

    public_key: str = Field(max_length=signatures.MAX_PUBLIC_KEY)


class KeyOut(BaseModel):
    """A registered key."""

    key_id: str
    user: str
    public_key: str
    added_by: str
    added_at: datetime


class SignatureIn(BaseModel):
    """A statement and its signature, each base64 of its exact bytes."""

    statement: str = Field(max_length=signatures.MAX_STATEMENT * 2)
    signature: str = Field(max_length=signatures.MAX_SIGNATURE * 2)


class SignatureOut(BaseModel):
    """A signature kept with an item (the statement itself stays sealed)."""

    item_id: str
    number: int
    role: str
    signer: str
    key_id: str
    statement_sha256: str
    added_at: datetime


@router.get("/signatures/origin")
def get_origin(vault: VaultDep, principal: CurrentPrincipal) -> OriginOut:
    """The `origin` a signed statement must name."""
    # The log's origin, public like its key: every account may read it, through the policy.
    authorize(vault.sessions, principal, actions.LEDGER_PROOF, Resource(kind=kinds.LEDGER))
    return OriginOut(origin=signatures.origin_of(vault))


@router.post("/users/{name}/keys", status_code=201)
def post_key(name: str, body: KeyIn, vault: VaultDep, principal: CurrentPrincipal) -> KeyOut:
    """Register a depositor's public key to the account NAME (custodians)."""
    view = signatures.register_key(vault, principal, name, body.public_key)
    return KeyOut(**dataclasses.asdict(view))


@router.get("/users/{name}/keys")
def get_keys(name: str, vault: VaultDep, principal: CurrentPrincipal) -> list[KeyOut]:
    """The keys registered to the account NAME (custodians)."""
    return [KeyOut(**dataclasses.asdict(k)) for k in signatures.list_keys(vault, principal, name)]


@router.post("/items/{item_id}/signatures", status_code=201)
def post_signature(
    item_id: str, body: SignatureIn, vault: VaultDep, principal: CurrentPrincipal
) -> SignatureOut:
    """Add the caller's signed statement about an item (a co-signature; a ledger entry)."""
    presented = signatures.Presented.from_base64(body.statement, body.signature)
    assert presented is not None
    view = signatures.cosign(vault, principal, item_id, presented)
    return SignatureOut(**dataclasses.asdict(view))


@router.get("/items/{item_id}/signatures")
def get_signatures(
    item_id: str, vault: VaultDep, principal: CurrentPrincipal
) -> list[SignatureOut]:
    """The signatures kept with an item."""
    return [
        SignatureOut(**dataclasses.asdict(s))
        for s in signatures.list_signatures(vault, principal, item_id)
    ]
