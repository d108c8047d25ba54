"""The refused-token budget (token bucket, 429 with Retry-After) and the policy file at start."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import keys
import policies
from tests.unit.vault.api_support import URL
from tests.unit.vault.conftest import FAST_KDF, PASSPHRASE
from tests.unit.vault.tokens import token_for
from vault.compose import app_of
from vault.errors import BadField
from vault.provision import create_vault
from vault.ratelimit import RateLimiter
from vault.settings import load_settings
from vault.tokens import TokenGate, TokenRefused, issue_token, key_id

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(burst=3, per_minute=6, clock=clock)  # one token per 10 s
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.spend("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(10.0)
    assert limiter.retry_after("10.0.0.2") is None  # per client
    clock.now += 4
    assert limiter.retry_after("10.0.0.1") == pytest.approx(6.0)
    clock.now += 6
    assert limiter.retry_after("10.0.0.1") is None
    limiter.spend("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(10.0)
    with pytest.raises(ValueError):
        RateLimiter(burst=0, per_minute=1)


def test_refused_tokens_are_limited_per_client_with_429_and_retry_after(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "vault", auth_failure_burst=3, auth_failure_per_minute=1)
    vault = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
    try:
        app = app_of(vault)
        good = {"Authorization": f"Bearer {token_for(vault, 'admin', 'custodian')}"}
        with TestClient(app, base_url=URL) as client:
            assert client.get("/v1/me", headers=good).status_code == 200
            for _ in range(3):
                bad = client.get("/v1/me", headers={"Authorization": "Bearer forged"})
                assert bad.status_code == 401
            limited = client.get("/v1/me", headers={"Authorization": "Bearer forged"})
            assert limited.status_code == 429
            assert limited.headers["content-type"] == "application/problem+json"
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            # Only refusals are limited: a good token is heard even while the budget is spent
            # (others' failures must not lock its holder out).
            assert client.get("/v1/me", headers=good).status_code == 200
            assert client.get("/healthz").status_code == 200  # public routes are not limited
    finally:
        vault.close()


def test_an_empty_policy_file_denies_everything(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("format = 1\n")
    settings = load_settings(tmp_path / "vault", policy_file=path)
    vault = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
    try:
        assert policies.active_engine().rules == ()
        app = app_of(vault)
        good = {"Authorization": f"Bearer {token_for(vault, 'admin', 'custodian')}"}
        with TestClient(app, base_url=URL, headers=good) as client:
            assert client.get("/v1/cases").status_code == 403
            assert client.post("/v1/cases", json={"name": "x"}).status_code == 403
            assert client.get("/v1/items/abc").status_code == 404
    finally:
        vault.close()
        policies.use(None)


def test_a_malformed_policy_file_stops_the_start_with_its_line_and_reason(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('format = 1\n\n[[rule]]\nroles = ["lawyr"]\nactions = ["item.read"]\n')
    settings = load_settings(tmp_path / "vault", policy_file=path)
    with pytest.raises(BadField) as refused:
        create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
    assert f"{path}:4: unknown role 'lawyr'" in refused.value.detail


def test_use_installs_an_engine_and_puts_the_shipped_one_back() -> None:
    empty = policies.Engine((), source="empty")
    previous = policies.use(empty)
    try:
        principal = policies.Principal("ava", frozenset({"custodian"}))
        assert not policies.decide(principal, "case.list", policies.Resource("case"))
    finally:
        policies.use(previous)
    assert policies.decide(
        policies.Principal("ava", frozenset({"custodian"})), "case.list", policies.Resource("case")
    )


def test_an_oidc_role_map_naming_an_unknown_role_is_a_settings_error(tmp_path: Path) -> None:
    issuer = {"issuer": "i", "jwks_url": "http://j", "audience": "a", "role_map": {"x": "root"}}
    with pytest.raises(ValueError, match="unknown vault roles"):
        load_settings(tmp_path, oidc_issuers=[issuer])
    with pytest.raises(ValueError):
        load_settings(tmp_path, oidc_issuers=[{**issuer, "role_map": {}, "algorithms": ["HS256"]}])
    ok = load_settings(tmp_path, oidc_issuers=[{**issuer, "role_map": {"x": "lawyer"}}])
    assert ok.oidc_issuers[0].algorithms == ("RS256",)


def test_the_gate_refuses_before_looking_anything_up() -> None:
    private = keys.generate_token_key()
    public = keys.public_pem(private)
    gate = TokenGate(
        local_keys={key_id(public): public}.get,
        local_issuer="urn:tvault:t",
        local_audience="tvault",
        issuers={},
        max_token_bytes=1024,
    )
    good = issue_token(
        private,
        public,
        subject="tina",
        role="therapist",
        account_id="a" * 32,
        generation=1,
        token_id="j1",
        issuer="urn:tvault:t",
        audience="tvault",
        ttl=timedelta(hours=1),
        now=datetime.now(UTC),
    )
    assert gate.authenticate(good).subject == "tina"

    def refused(token: str) -> str:
        with pytest.raises(TokenRefused) as caught:
            gate.authenticate(token)
        assert caught.value.detail == "invalid or expired token"  # one message for the client
        return caught.value.reason

    head, body, signature = good.split(".")
    assert refused(good + "A" * 1024) == "oversized token"
    assert refused("a.b.c.d.e") == "encrypted token (JWE) refused"
    assert refused("a.b") == "malformed token"
    assert refused("!!.!!.!!") == "malformed token"
    for name in ("jku", "x5u", "jwk", "x5c", "crit"):
        header = {"alg": "ES256", "kid": key_id(public), name: "https://elsewhere.example/"}
        assert refused(f"{_b64(header)}.{body}.{signature}") == f"header {name} refused"
    assert refused(f"{_b64({'alg': 'ES256'})}.{body}.{signature}") == "no kid"
    assert refused(f"{_b64({'alg': 'ES256', 'kid': 'other'})}.{body}.{signature}") == "unknown kid"
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    stranger = _b64({**claims, "iss": "https://elsewhere.example/"})
    assert refused(f"{head}.{stranger}.{signature}") == "unknown issuer"
    assert refused(f"{head}.{body}.{signature[:-4]}AAAA") == "signature or claims invalid"


def _b64(document: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
