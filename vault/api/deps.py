"""FastAPI dependencies: `VaultDep` (the composed vault) and `CurrentPrincipal` (the caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import keys
from policies import Principal
from vault.accounts import find_user, principal_of
from vault.api.auth import verify_token
from vault.compose import TOKEN_SIGNING, Vault
from vault.errors import NotFound, Unauthenticated


def get_vault(request: Request) -> Vault:
    """Return the vault the app was created with."""
    vault: Vault = request.app.state.vault
    return vault


VaultDep = Annotated[Vault, Depends(get_vault)]

_bearer = HTTPBearer(auto_error=False)


def verification_key(vault: Vault) -> str:
    """Return the PEM public key tokens of `vault` are verified with."""
    return keys.public_pem(vault.keyring.secret(TOKEN_SIGNING).decode("ascii"))


def get_principal(
    request: Request,
    vault: VaultDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the principal of the request's bearer token.

    Raises `Unauthenticated` without a valid token or for a disabled or removed account; the
    account's role and grants come from the database, not the token, so changes act at once.
    """
    if credentials is None:
        raise Unauthenticated("a bearer token is required")
    claims = verify_token(
        credentials.credentials,
        request.app.state.public_pem,
        issuer=vault.settings.token_issuer,
        audience=vault.settings.token_audience,
    )
    with vault.sessions() as session:
        try:
            user = find_user(session, claims.subject)
        except NotFound as exc:
            raise Unauthenticated("invalid or expired token") from exc
        return principal_of(session, user)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
