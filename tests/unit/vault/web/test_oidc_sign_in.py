"""Web sign-in through an OIDC issuer: authorization code with PKCE (issue 19 point 2).

The issuer's token endpoint and JWKS are played by an `httpx.MockTransport` (the issuer is an
outside system; the vault's side of the flow is real): it checks the PKCE verifier against the
challenge the vault sent, as an issuer does, and signs the ID token with its own RSA key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt as rfc_jwt
from joserfc.jwk import RSAKey

from tests.unit.vault.web.web_support import browser, entries
from vault import ledger
from vault.compose import app_of
from vault.oidc import JwksClient
from vault.parts import Vault
from vault.settings import OidcIssuer
from vault.tokens import TokenGate

ISSUER = "http://idp.test/realms/t"


class Idp:
    """The issuer: remembers the challenge of each code it hands out."""

    def __init__(self, vault: Vault, subject: str = "lena") -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
        self.vault, self.subject = vault, subject
        self.challenges: dict[str, tuple[str, str]] = {}  # code -> (challenge, nonce)
        self.nonce_override: str | None = None

    def authorize(self, location: str) -> str:
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["code_challenge_method"] == "S256" and query["client_id"] == "vault-web"
        code = f"code-{len(self.challenges)}"
        self.challenges[code] = (query["code_challenge"], query["nonce"])
        return f"/sign-in/oidc/callback?code={code}&state={query['state']}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/certs":
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        challenge, nonce = self.challenges.pop(form["code"], ("", ""))
        verifier = hashlib.sha256(form["code_verifier"].encode()).digest()
        if base64.urlsafe_b64encode(verifier).rstrip(b"=").decode() != challenge:
            return httpx.Response(400, json={"error": "invalid_grant"})
        now = int(self.vault.clock().timestamp())
        claims = {
            "iss": ISSUER,
            "aud": "vault-web",
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_override or nonce,
            "preferred_username": self.subject,
            "realm_access": {"roles": ["tvault-lawyer"]},
        }
        token = rfc_jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, self.key)
        return httpx.Response(200, content=json.dumps({"id_token": token}).encode())


def _app(vault: Vault, idp: Idp):  # type: ignore[no-untyped-def]
    issuer = OidcIssuer(
        issuer=ISSUER,
        jwks_url="http://idp.test/certs",
        audience="tvault",
        role_map={"tvault-lawyer": "lawyer"},
        authorization_url="http://idp.test/auth",
        token_url="http://idp.test/token",
        client_id="vault-web",
        name="Org IdP",
    )
    vault.settings = vault.settings.model_copy(update={"oidc_issuers": (issuer,)})
    app = app_of(vault)
    transport = httpx.MockTransport(idp)
    app.state.oidc_transport = transport
    app.state.gate = TokenGate(
        local_keys=app.state.token_keys,
        local_issuer=vault.settings.token_issuer,
        local_audience=vault.settings.token_audience,
        issuers={ISSUER: JwksClient(issuer, transport=transport)},
        max_token_bytes=8192,
    )
    return app


@pytest.mark.both_databases
def test_sign_in_through_the_issuer_with_pkce_opens_a_recorded_session(vault: Vault) -> None:
    idp = Idp(vault)
    client = browser(_app(vault, idp))
    page = client.get("/sign-in")
    assert "Sign in with Org IdP" in page.text
    start = client.get("/sign-in/oidc/0")
    assert start.status_code == 303 and start.headers["location"].startswith(
        "http://idp.test/auth?"
    )
    assert (
        "SameSite=lax" in start.headers["set-cookie"] and "HttpOnly" in start.headers["set-cookie"]
    )
    back = client.get(idp.authorize(start.headers["location"]))
    assert back.status_code == 200 and 'http-equiv="refresh"' in back.text
    home = client.get("/")
    assert home.status_code == 200 and "lena" in home.text
    [signed] = entries(vault, ledger.actions.SIGN_IN)
    assert signed.actor == "lena" and signed.details["via"] == f"oidc:{ISSUER}"
    [first] = entries(vault, ledger.actions.OIDC_FIRST_USE)
    assert first.details["issuer"] == ISSUER


@pytest.mark.parametrize("attack", ["state", "nonce", "verifier", "account", "role"])
def test_a_sign_in_that_does_not_check_out_opens_nothing(vault: Vault, attack: str) -> None:
    subject = {"account": "nobody", "role": "tina"}.get(attack, "lena")  # tina: a therapist
    idp = Idp(vault, subject=subject)
    client = browser(_app(vault, idp))
    start = client.get("/sign-in/oidc/0")
    back = idp.authorize(start.headers["location"])
    if attack == "state":
        back = back.split("&state=")[0] + "&state=forged"
    if attack == "nonce":
        idp.nonce_override = "replayed-nonce"
    if attack == "verifier":
        code = back.split("code=")[1].split("&")[0]
        idp.challenges[code] = ("another-challenge", idp.challenges[code][1])
    answer = client.get(back)
    assert answer.status_code == 401 and "did not work" in answer.text
    assert client.get("/").status_code == 401
    assert not entries(vault, ledger.actions.SIGN_IN)
    reasons = [e.details["reason"] for e in entries(vault, ledger.actions.ACCESS_DENIED)]
    assert reasons and reasons[-1].startswith("oidc: ")
