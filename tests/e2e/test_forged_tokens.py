"""Forged tokens against a served vault: each refused with 401 and each a ledger entry.

Tokens are made with joserfc, a JOSE library independent of the python-jose the vault verifies
with, or by hand where no library will make them (`alg: none`, HMAC keyed with a public key).
The vault trusts its own ES256 key and one OIDC issuer whose JWKS a small HTTP server on
127.0.0.1 serves; a second server plays the attacker's key host for `jku`/`x5u`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwe, jwt
from joserfc.jwk import ECKey, RSAKey

from tests.e2e.conftest import Server, start_server, tvault
from tests.e2e.keyhost_support import KeyHost
from vault.headers import to_headers

ISSUER = "http://127.0.0.1/realms/tvault"
AUDIENCE = "tvault"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def by_hand(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(secret, message, hashlib.sha256).digest()


@pytest.fixture(scope="module")
def issuer_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "kc-1"})


@pytest.fixture(scope="module")
def attacker_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "evil-1"})


@pytest.fixture(scope="module")
def key_host(issuer_key: RSAKey) -> Iterator[KeyHost]:
    host = KeyHost(
        [
            {**issuer_key.as_dict(private=False), "use": "sig", "alg": "RS256"},
            # An EC key without `alg`: a token may name it while claiming RS256.
            ECKey.generate_key("P-256", parameters={"kid": "kc-ec"}).as_dict(private=False),
        ]
    )
    yield host
    host.stop()


@pytest.fixture(scope="module")
def attacker_host(attacker_key: RSAKey) -> Iterator[KeyHost]:
    host = KeyHost([attacker_key.as_dict(private=False)])
    yield host
    host.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, key_host: KeyHost) -> Iterator[Server]:
    issuers = [
        {
            "issuer": ISSUER,
            "jwks_url": key_host.url,
            "audience": AUDIENCE,
            "algorithms": ["RS256"],
            "subject_claim": "preferred_username",
            "roles_claim": "realm_access.roles",
            "role_map": {"tvault-lawyer": "lawyer"},
            "jwks_min_refetch_seconds": 3600,
        }
    ]
    home = tmp_path_factory.mktemp("forged") / "vault"
    running = start_server(
        home, TVAULT_OIDC_ISSUERS=json.dumps(issuers), TVAULT_AUTH_FAILURE_BURST="1000"
    )
    tvault("users", "add", "lena", "--role", "lawyer", env=running.env)
    yield running
    running.stop()


def oidc_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "6f1c0d3e-keycloak-user-id",
        "preferred_username": "lena",
        "realm_access": {"roles": ["tvault-lawyer", "offline_access"]},
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def rs256(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key)


def denials(home: Path) -> list[str]:
    with sqlite3.connect(home / "vault.db") as db:
        rows = db.execute(
            "SELECT entry FROM ledger_entries WHERE action = 'access denied' ORDER BY seq"
        ).fetchall()
    return [json.loads(row[0])["details"]["reason"] for row in rows]


def call(server: Server, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_a_genuine_oidc_token_is_accepted_with_its_mapped_role(
    server: Server, issuer_key: RSAKey
) -> None:
    response = call(server, rs256(issuer_key, oidc_claims()))
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "lena", "roles": ["lawyer"]}


def test_an_oidc_principal_gets_its_grants_from_the_vault_and_loses_them_at_once(
    server: Server, issuer_key: RSAKey
) -> None:
    headers = {"Authorization": f"Bearer {rs256(issuer_key, oidc_claims())}"}
    with server.client("tina") as tina:
        case = tina.post("/v1/cases", json={"name": "Case of the hill"}).json()["id"]
        params = {"kind": "testimony", "title": "T", "consent": "legal"}
        item = tina.post(
            f"/v1/cases/{case}/items", headers=to_headers(params), content=b"words"
        ).json()["id"]
    with (
        server.client("admin") as admin,
        httpx.Client(base_url=server.url, headers=headers) as lena,
    ):
        assert lena.get(f"/v1/items/{item}").status_code == 404
        grant = {"user": "lena", "role": "lawyer"}
        assert admin.post(f"/v1/cases/{case}/grants", json=grant).status_code == 204
        assert lena.get(f"/v1/items/{item}/content").content == b"words"
        assert admin.delete(f"/v1/cases/{case}/grants/lena").status_code == 200
        assert lena.get(f"/v1/items/{item}").status_code == 404


def local_public(server: Server) -> ECKey:
    [jwk] = httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]
    return ECKey.import_key(jwk)


def forgeries(
    server: Server, issuer_key: RSAKey, attacker_key: RSAKey, attacker_url: str
) -> dict[str, str]:
    local = local_public(server)
    with (server.home / "tvault.toml").open("rb") as file:
        local_issuer = tomllib.load(file)["token_issuer"]
    local_claims = {
        "iss": local_issuer,
        "aud": "tvault",
        "sub": "admin",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        "jti": "forged",
        "role": "custodian",
    }
    now = int(time.time())
    rsa_pem = issuer_key.as_pem(private=False)
    rsa_der = issuer_key.as_der(private=False)
    ec_pem = local.as_pem(private=False)
    ec_der = local.as_der(private=False)
    kid = issuer_key.kid
    return {
        "alg none (oidc)": by_hand({"alg": "none", "kid": kid}, oidc_claims(), lambda _: b""),
        "alg none (local)": by_hand(
            {"alg": "none", "kid": local.kid or "x"}, local_claims, lambda _: b""
        ),
        "HS256 keyed with the RSA public PEM": by_hand(
            {"alg": "HS256", "kid": kid}, oidc_claims(), hs256(rsa_pem)
        ),
        "HS256 keyed with the RSA public DER": by_hand(
            {"alg": "HS256", "kid": kid}, oidc_claims(), hs256(rsa_der)
        ),
        "HS256 keyed with the vault's EC public PEM": by_hand(
            {"alg": "HS256", "kid": "any"}, local_claims, hs256(ec_pem)
        ),
        "HS256 keyed with the vault's EC public DER": by_hand(
            {"alg": "HS256", "kid": "any"}, local_claims, hs256(ec_der)
        ),
        "expired": rs256(issuer_key, oidc_claims(iat=now - 7200, exp=now - 3600)),
        "not yet valid": rs256(issuer_key, oidc_claims(nbf=now + 3600)),
        "wrong iss": rs256(issuer_key, oidc_claims(iss="https://evil.example/realms/tvault")),
        "the vault's iss, the issuer's key": rs256(issuer_key, oidc_claims(iss=local_issuer)),
        "wrong aud": rs256(issuer_key, oidc_claims(aud="someone-else")),
        "missing aud": rs256(issuer_key, oidc_claims(aud=None)),
        "missing exp": rs256(issuer_key, oidc_claims(exp=None)),
        "missing kid": jwt.encode({"alg": "RS256"}, oidc_claims(), issuer_key),
        "unknown kid": rs256(attacker_key, oidc_claims()),
        "jku to the attacker's keys": rs256(attacker_key, oidc_claims(), jku=attacker_url),
        "x5u to the attacker's keys": rs256(attacker_key, oidc_claims(), x5u=attacker_url),
        "jku beside a trusted kid": rs256(issuer_key, oidc_claims(), jku=attacker_url),
        "oversized": rs256(issuer_key, oidc_claims(padding="A" * 20000)),
        "JWE": jwe.encrypt_compact(
            {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": kid},
            json.dumps(oidc_claims()).encode(),
            issuer_key,
        ),
        "not a token": "not-a-token",
        "RS256 naming the issuer's EC key": jwt.encode(
            {"alg": "RS256", "kid": "kc-ec"}, oidc_claims(), issuer_key
        ),
        "ES256, not pinned for the issuer": jwt.encode(
            {"alg": "ES256", "kid": "kc-ec"}, oidc_claims(), ECKey.generate_key("P-256")
        ),
        "no mapped role": rs256(
            issuer_key, oidc_claims(realm_access={"roles": ["offline_access", "admin"]})
        ),
        "no local account": rs256(issuer_key, oidc_claims(preferred_username="mallory")),
        "no subject claim": rs256(issuer_key, oidc_claims(preferred_username=None)),
    }


def test_every_forged_token_is_refused_and_recorded(
    server: Server,
    issuer_key: RSAKey,
    attacker_key: RSAKey,
    attacker_host: KeyHost,
    key_host: KeyHost,
) -> None:
    call(server, rs256(issuer_key, oidc_claims()))  # the issuer's JWKS is cached now
    fetched = key_host.requests
    before = len(denials(server.home))
    forged = forgeries(server, issuer_key, attacker_key, attacker_host.url)
    for name, token in forged.items():
        response = call(server, token)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "invalid or expired token", name
    reasons = denials(server.home)[before:]
    assert len(reasons) == len(forged), reasons
    # The vault never fetched a key from where a token pointed.
    assert attacker_host.requests == 0
    # Unknown kids refetch the issuer's JWKS at most once per jwks_min_refetch_seconds.
    assert key_host.requests - fetched <= 1
    assert "oversized token" in reasons
    assert "encrypted token (JWE) refused" in reasons
    assert {"header jku refused", "header x5u refused"} <= set(reasons)


def test_a_storm_of_unknown_kids_does_not_storm_the_issuer(
    server: Server, attacker_key: RSAKey, key_host: KeyHost
) -> None:
    before = key_host.requests
    for n in range(20):
        key = RSAKey.generate_key(2048, parameters={"kid": f"storm-{n}"}) if n < 2 else attacker_key
        assert call(server, rs256(key, oidc_claims())).status_code == 401
    assert key_host.requests - before <= 1
