"""Routes of credentials under `/v1` (custodians, `user.manage`): issue, list and revoke the
vault's tokens; disable, enable and change the role of accounts. Each change is a ledger entry
(`vault.credentials`) and acts on the next request of every process.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from vault import credentials
from vault.api.deps import CurrentPrincipal, VaultDep, get_principal

router = APIRouter(prefix="/v1", tags=["credentials"], dependencies=[Depends(get_principal)])


class TokenIn(BaseModel):
    """How long the token lives (default `TVAULT_TOKEN_TTL_SECONDS`, at most the maximum)."""

    ttl_seconds: int | None = Field(default=None, ge=1)


class TokenOut(BaseModel):
    token: str
    token_id: str
    account: str
    expires_at: datetime


class TokenRecordOut(BaseModel):
    token_id: str
    account_id: str
    generation: int
    kid: str
    issued_at: datetime
    expires_at: datetime
    issued_by: str
    via: str
    revoked_at: datetime | None


class RevokedOut(BaseModel):
    token: TokenRecordOut
    changed: bool


class AccountStateOut(BaseModel):
    account: str
    disabled: bool
    changed: bool


class RoleIn(BaseModel):
    role: str = Field(max_length=32)


class RoleOut(BaseModel):
    account: str
    role: str
    changed: bool


def _record(record: credentials.TokenRecord) -> TokenRecordOut:
    return TokenRecordOut(**record.__dict__)


@router.post("/users/{name}/tokens", status_code=201)
def post_token(
    name: str, body: TokenIn, vault: VaultDep, principal: CurrentPrincipal, response: Response
) -> TokenOut:
    """Issue a token for an account; whoever holds it acts as that account (ledger entry)."""
    issued = credentials.issue_by(vault, principal, name, body.ttl_seconds)
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(
        token=issued.token,
        token_id=issued.token_id,
        account=issued.account,
        expires_at=issued.expires_at,
    )


@router.get("/users/{name}/tokens")
def get_tokens(name: str, vault: VaultDep, principal: CurrentPrincipal) -> list[TokenRecordOut]:
    """The unexpired tokens registered for an account, newest first (never the tokens)."""
    return [_record(r) for r in credentials.tokens_of(vault, principal, name)]


@router.delete("/tokens/{token_id}")
def delete_token(token_id: str, vault: VaultDep, principal: CurrentPrincipal) -> RevokedOut:
    """Revoke a token; refused from the next request on, on every server process."""
    record, changed = credentials.revoke_by(vault, principal, token_id)
    return RevokedOut(token=_record(record), changed=changed)


@router.post("/users/{name}/disable")
def post_disable(name: str, vault: VaultDep, principal: CurrentPrincipal) -> AccountStateOut:
    """Disable an account: every token of it is refused from the next request on."""
    changed = credentials.set_disabled_by(vault, principal, name, True)
    return AccountStateOut(account=name, disabled=True, changed=changed)


@router.post("/users/{name}/enable")
def post_enable(name: str, vault: VaultDep, principal: CurrentPrincipal) -> AccountStateOut:
    """Enable an account again; tokens issued before it was disabled stay refused."""
    changed = credentials.set_disabled_by(vault, principal, name, False)
    return AccountStateOut(account=name, disabled=False, changed=changed)


@router.put("/users/{name}/role")
def put_role(name: str, body: RoleIn, vault: VaultDep, principal: CurrentPrincipal) -> RoleOut:
    """Change an account's role; its earlier tokens are refused from the next request on."""
    changed = credentials.change_role_by(vault, principal, name, body.role)
    return RoleOut(account=name, role=body.role, changed=changed)
