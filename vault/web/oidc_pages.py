"""Web sign-in through an OpenID Connect issuer: the authorization code flow with PKCE.

RFC 7636 (PKCE, `S256`) and OIDC Core 3.1: the browser goes to the issuer with a fresh `state`,
`nonce` and code challenge; the issuer sends it back with a code, which the vault exchanges
(with the verifier) at the token endpoint for an ID token, verified like any OIDC token
(`vault.tokens.TokenGate`: pinned algorithms, the issuer's JWKS) with the client id as its
audience and the sign-in's nonce. The account it names must be an enabled local account, as
for API tokens, and the token's mapped roles must include the account's role (a session has
that one role, with the account's grants); its first use is a ledger entry, and so is the
session (`sign in`, `via: oidc:<issuer>`).

The state, nonce and verifier wait in a short-lived cookie (HttpOnly; SameSite=Lax, since the
issuer's redirect back is a navigation from another site, which a Strict cookie would miss).
For the same reason the callback answers with a page of this site that moves on to `/`, so
the Strict session cookie is sent from then on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from vault import credentials
from vault.accounts import find_user
from vault.api.deps import ANONYMOUS, VaultDep, gate_and_limiter
from vault.errors import NotFound
from vault.parts import Vault
from vault.settings import OidcIssuer
from vault.tokens import TokenGate, TokenRefused
from vault.web import forms, sessions
from vault.web.errors import sign_in_page
from vault.web.public_pages import _budgets, _record_failed, _wait, limiter
from vault.web.render import N_, render, translate

pages = APIRouter(include_in_schema=False)

COOKIE: Final = "tvault_oidc"
COOKIE_SECONDS: Final = 600  # a sign-in at the issuer must finish within ten minutes
CALLBACK: Final = "/sign-in/oidc/callback"
FAILED: Final = N_("Signing in through the identity provider did not work. Nothing was changed.")
MAX_TOKEN_RESPONSE: Final = 64 * 1024


def web_issuers(vault: Vault) -> list[OidcIssuer]:
    """Return the issuers the sign-in page offers, in configuration order."""
    return [issuer for issuer in vault.settings.oidc_issuers if issuer.web_sign_in]


def _gate(request: Request) -> TokenGate:
    return gate_and_limiter(request)[0]


def _redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + CALLBACK


def _challenge(verifier: str) -> str:
    # RFC 7636 4.2: S256, base64url without padding.
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@pages.get("/sign-in/oidc/{index:int}")
def start(index: int, request: Request, vault: VaultDep) -> Response:
    """Send the browser to issuer number `index` (of `web_issuers`) to sign in."""
    issuers = web_issuers(vault)
    if not 0 <= index < len(issuers):
        raise NotFound("no such identity provider")
    issuer = issuers[index]
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # RFC 7636 4.1: 43-128 characters
    query = urlencode(
        {
            "response_type": "code",
            "client_id": issuer.client_id,
            "redirect_uri": _redirect_uri(request),
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(f"{issuer.authorization_url}?{query}", status_code=303)
    response.set_cookie(
        COOKIE,
        f"{index}.{state}.{nonce}.{verifier}",
        max_age=COOKIE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/sign-in/oidc",
    )
    return response


def _exchange(request: Request, issuer: OidcIssuer, code: str, verifier: str) -> str:
    """Return the ID token the issuer's token endpoint gives for `code`. Raises `TokenRefused`."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _redirect_uri(request),
        "client_id": str(issuer.client_id),
        "code_verifier": verifier,
    }
    if issuer.client_secret is not None:
        form["client_secret"] = issuer.client_secret.get_secret_value()
    transport = getattr(request.app.state, "oidc_transport", None)  # tests stand in here
    try:
        with httpx.Client(
            timeout=issuer.jwks_timeout_seconds, follow_redirects=False, transport=transport
        ) as client:
            answer = client.post(str(issuer.token_url), data=form)
    except httpx.HTTPError as exc:
        raise TokenRefused("token endpoint unreachable") from exc
    if answer.status_code != 200 or len(answer.content) > MAX_TOKEN_RESPONSE:
        raise TokenRefused("token endpoint refused the code")
    try:
        token = answer.json().get("id_token")
    except (ValueError, AttributeError) as exc:
        raise TokenRefused("token endpoint answer malformed") from exc
    if not isinstance(token, str):
        raise TokenRefused("no id_token")
    return token


def _finish(
    request: Request, vault: Vault, issuer: OidcIssuer, code: str, nonce: str, verifier: str
) -> sessions.Opened:
    """Exchange the code, verify the ID token, open the session. Raises `TokenRefused`."""
    token = _exchange(request, issuer, code, verifier)
    identity = _gate(request).authenticate(token, audience=issuer.client_id, nonce=nonce)
    if identity.issuer != issuer.issuer:
        raise TokenRefused("ID token from another issuer")
    try:
        with vault.sessions() as session:
            user = find_user(session, identity.subject)
            account_id, generation, role = user.id, user.generation, user.role
        if role not in identity.roles:
            # The issuer stays the authority on roles (docs/access.md): a session has the
            # account's one role, so the token must grant that role too.
            raise TokenRefused("the issuer does not grant the account's role")
        credentials.record_first_use(vault, identity.issuer, identity.subject, identity.roles)
        return sessions.open_session(
            vault,
            account_id,
            generation,
            sessions.ACTIVE,
            second_factor=False,
            via=f"oidc:{identity.issuer}",
        )
    except NotFound as exc:
        raise TokenRefused("unknown or disabled account") from exc


@pages.get(CALLBACK)
async def callback(request: Request, vault: VaultDep) -> Response:
    """The issuer's redirect back: check `state`, finish the sign-in, or say it failed."""
    held = request.cookies.get(COOKIE, "").split(".")
    code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
    issuers = web_issuers(vault)
    _wait(request, "")
    try:
        if len(held) != 4 or not held[0].isdigit() or not 0 <= int(held[0]) < len(issuers):
            raise TokenRefused("no sign-in under way")
        if not state or not hmac.compare_digest(held[1], state):
            raise TokenRefused("state does not match the sign-in")
        if not code or len(code) > 2048:
            raise TokenRefused("no code")
        issuer = issuers[int(held[0])]
        opened = await run_in_threadpool(_finish, request, vault, issuer, code, held[2], held[3])
    except TokenRefused as exc:
        for key in _budgets(request, ""):
            limiter(request).spend(key)
        await run_in_threadpool(_record_failed, vault, ANONYMOUS, f"oidc: {exc.reason}")
        response = sign_in_page(request, translate(request, FAILED))
        response.delete_cookie(COOKIE, path="/sign-in/oidc")
        return response
    await run_in_threadpool(
        sessions.close, vault, request.cookies.get(forms.SESSION_COOKIE), "signed in again"
    )
    # A page of this site, not a redirect: the Strict session cookie is not sent on a
    # navigation another site started (docs/web.md "OIDC").
    response = render(request, "signed_in.html")
    forms.set_cookie(request, response, forms.SESSION_COOKIE, opened.secret)
    response.delete_cookie(COOKIE, path="/sign-in/oidc")
    return response
