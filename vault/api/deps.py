"""FastAPI dependencies: `VaultDep` (the composed vault) and `CurrentPrincipal` (the caller)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from policies import Principal
from vault import credentials, ledger
from vault.accounts import NAME, account_principal, principal_for_token
from vault.errors import NotFound, TooManyRequests
from vault.parts import Vault
from vault.ratelimit import RateLimiter
from vault.tokens import TokenGate, TokenRefused


async def get_vault(request: Request) -> Vault:
    """Return the vault the app was created with (async: nothing to wait for, so FastAPI
    calls it on the event loop instead of handing it to a worker thread)."""
    vault: Vault = request.app.state.vault
    return vault


VaultDep = Annotated[Vault, Depends(get_vault)]

_bearer = HTTPBearer(auto_error=False)
ANONYMOUS = "anonymous"  # the ledger actor of a request no token speaks for


def gate_and_limiter(request: Request) -> tuple[TokenGate, RateLimiter]:
    """Return the app's token gate and budget of refused attempts (`vault.compose.gatekeeping`,
    built when the app was created: JWKS caches and buckets live as long as the app)."""
    state = request.app.state
    gate: TokenGate = state.gate
    limiter: RateLimiter = state.limiter
    return gate, limiter


async def get_principal(
    request: Request,
    vault: VaultDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the principal of the request's bearer token.

    The account's grants (and, for the vault's own tokens, its role) come from the database,
    not the token, and a vault token must be registered, unrevoked and name the account's id
    and current generation, so a revocation acts on the next request. OIDC tokens carry roles
    mapped from their claims, and must name an enabled local account; the first use of each is
    a ledger entry. Raises `Unauthenticated` without a valid token or for a disabled or removed
    account, after an `access denied` ledger entry; `TooManyRequests` instead (and no ledger
    entry) once the client's address, or the account the refused token claims, has spent its
    budget of refused attempts (`_limit_keys`). A valid token is never refused by the limiter:
    others' failures cannot lock an account out.

    Runs on the event loop when `_resolves_inline` (the embedded SQLite database, no OIDC
    issuer): then nothing in it waits on a network, and a worker-thread hop per request cost
    more than the check (0.4-0.8 ms at the client, bench/RESULTS.md). Otherwise, and always
    for the ledger entry of a refusal (a write), it runs on a worker thread.
    """
    gate, limiter = gate_and_limiter(request)
    token = credentials.credentials if credentials is not None else None
    try:
        seen: set[tuple[str, str]] = request.app.state.oidc_seen
        if _resolves_inline(vault, gate):
            principal = _resolve(vault, gate, token, seen)
        else:
            principal = await run_in_threadpool(_resolve, vault, gate, token, seen)
    except TokenRefused as exc:
        keys = _limit_keys(request, token, gate.max_token_bytes)
        waits = [w for w in map(limiter.retry_after, keys) if w is not None]
        if waits:
            raise TooManyRequests("too many refused attempts; retry later", max(waits)) from None
        for key in keys:
            limiter.spend(key)
        await run_in_threadpool(_record_refusal, vault, exc.reason)
        raise
    # The actor of a `request refused` entry if this request is refused later (vault.api.refusals).
    request.state.principal = principal
    return principal


def _limit_keys(request: Request, token: str | None, max_bytes: int) -> list[str]:
    """Return the budgets a refused attempt spends: its address, and the account it claims.

    The address is the peer's, or the forwarded one only when the peer is a trusted proxy
    (`TVAULT_TRUSTED_PROXIES`: uvicorn rewrites `request.client` then, never otherwise), so a
    client cannot pick a fresh address per attempt. The claimed subject (unverified: the token
    was refused) limits guessing against one account from many addresses.
    """
    keys = [f"address {request.client.host if request.client else 'unknown'}"]
    subject = _claimed_subject(token, max_bytes)
    if subject is not None:
        keys.append(f"subject {subject}")
    return keys


def _claimed_subject(token: str | None, max_bytes: int) -> str | None:
    # The payload of a JWS compact token (RFC 7515 7.1), decoded without trusting it; only a
    # well-formed account name is kept, so an attacker cannot grow keys of any size.
    parts = token.split(".") if token is not None and len(token) <= max_bytes else []
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    subject = payload.get("sub") if isinstance(payload, dict) else None
    return subject if isinstance(subject, str) and NAME.fullmatch(subject) else None


def _resolves_inline(vault: Vault, gate: TokenGate) -> bool:
    # A read of a local SQLite file (WAL: readers never wait for a writer) and a signature
    # check; an OIDC issuer's keys may have to be fetched, and PostgreSQL is a network away.
    return vault.engine.dialect.name == "sqlite" and not gate.issuers


def _resolve(
    vault: Vault, gate: TokenGate, token: str | None, seen: set[tuple[str, str]]
) -> Principal:
    """Return the principal `token` proves. Raises `TokenRefused` (with its reason).

    `seen` holds the (issuer, account id) pairs whose OIDC first use this process knows is
    recorded, so only a first request per principal and process writes.
    """
    if token is None:
        raise TokenRefused("no bearer token")
    identity = gate.authenticate(token)
    claims = identity.claims
    with vault.sessions() as session:
        try:
            if claims is not None:
                vault_principal = principal_for_token(
                    session, claims.subject, claims.token_id, claims.account_id, claims.generation
                )
                # Promise 9: what this token then does is recorded under its register id.
                return replace(vault_principal, credential=f"token:{claims.token_id}")
            principal, account_id = account_principal(session, identity.subject)
        except NotFound as exc:
            # The reason is one of the fixed phrases of `vault.accounts`, never token text.
            reason = exc.detail if claims is not None else "unknown or disabled account"
            raise TokenRefused(reason) from exc
    if (identity.issuer, account_id) not in seen:
        try:
            credentials.record_first_use(vault, identity.issuer, identity.subject, identity.roles)
        except NotFound as exc:
            raise TokenRefused("unknown or disabled account") from exc
        seen.add((identity.issuer, account_id))
    # The issuer names the credential (its tokens have no register here); the `oidc first use`
    # entry with this issuer and account tells how it came to be accepted.
    return Principal(
        principal.subject, identity.roles, principal.grants, credential=f"oidc:{identity.issuer}"
    )


def _record_refusal(vault: Vault, reason: str) -> None:
    # DESIGN.md promise 3: a denied attempt is an event, in its own transaction. The actor is
    # unknown by definition; the reason is one of auth.py's fixed phrases, never token text.
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=ANONYMOUS,
            action=ledger.actions.ACCESS_DENIED,
            details={"attempted": "authenticate", "reason": reason},
        )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
