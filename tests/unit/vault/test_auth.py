"""Tokens: ES256 only, with exp, iat, iss, aud, sub and jti required (NOTES.md, python-jose)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt as rfc_jwt
from joserfc.jwk import ECKey

import keys
from vault.errors import Unauthenticated
from vault.tokens import issue_token, jwks, verify_token

ISS, AUD = "urn:tvault:test", "tvault"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    private = keys.generate_token_key()
    return private, keys.public_pem(private)


def _token(private: str, public: str, **overrides: object) -> str:
    return issue_token(
        private,
        public,
        subject=str(overrides.get("subject", "tina")),
        role="therapist",
        account_id="a" * 32,
        generation=1,
        token_id="j1",
        issuer=str(overrides.get("issuer", ISS)),
        audience=str(overrides.get("audience", AUD)),
        ttl=overrides.get("ttl", timedelta(hours=1)),  # type: ignore[arg-type]
        now=overrides.get("now", NOW),  # type: ignore[arg-type]
    )


def _forge(private: str, claims: dict[str, object]) -> str:
    # joserfc, an independent implementation, makes the tokens python-jose must refuse.
    return rfc_jwt.encode({"alg": "ES256"}, claims, ECKey.import_key(private))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "tina",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
        "jti": "j1",
        "role": "therapist",
        "uid": "a" * 32,
        "gen": 1,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_token_round_trips(key_pair: tuple[str, str]) -> None:
    private, public = key_pair
    claims = verify_token(_token(private, public), public, issuer=ISS, audience=AUD)
    assert (claims.subject, claims.role) == ("tina", "therapist")


def test_a_forged_but_complete_token_is_accepted(key_pair: tuple[str, str]) -> None:
    # The control for the refusals below: joserfc's tokens are otherwise acceptable.
    private, public = key_pair
    assert verify_token(_forge(private, _claims()), public, issuer=ISS, audience=AUD)


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub", "jti", "uid", "gen"])
def test_a_token_missing_a_required_claim_is_refused(
    key_pair: tuple[str, str], missing: str
) -> None:
    private, public = key_pair
    token = _forge(private, _claims(**{missing: None}))
    with pytest.raises(Unauthenticated):
        verify_token(token, public, issuer=ISS, audience=AUD)


@pytest.mark.parametrize(
    "overrides",
    [
        {"issuer": "urn:tvault:other"},
        {"audience": "someone-else"},
        {"now": NOW - timedelta(hours=2)},
    ],
    ids=["issuer", "audience", "expired"],
)
def test_wrong_issuer_audience_or_expiry_is_refused(
    key_pair: tuple[str, str], overrides: dict[str, object]
) -> None:
    private, public = key_pair
    with pytest.raises(Unauthenticated):
        verify_token(_token(private, public, **overrides), public, issuer=ISS, audience=AUD)


def test_a_token_signed_by_another_key_is_refused(key_pair: tuple[str, str]) -> None:
    _, public = key_pair
    other = keys.generate_token_key()
    with pytest.raises(Unauthenticated):
        verify_token(_forge(other, _claims()), public, issuer=ISS, audience=AUD)


def test_hs256_with_the_public_key_as_secret_is_refused(key_pair: tuple[str, str]) -> None:
    # Key confusion: an attacker who knows the public key signs with it as an HMAC secret.
    _, public = key_pair
    signing_input = (
        _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(_claims()).encode())
    )
    mac = hmac.new(public.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + _b64(mac)
    with pytest.raises(Unauthenticated):
        verify_token(token, public, issuer=ISS, audience=AUD)


def test_alg_none_is_refused(key_pair: tuple[str, str]) -> None:
    _, public = key_pair
    token = ".".join(
        [_b64(json.dumps({"alg": "none"}).encode()), _b64(json.dumps(_claims()).encode()), ""]
    )
    with pytest.raises(Unauthenticated):
        verify_token(token, public, issuer=ISS, audience=AUD)


def test_jwks_publishes_the_public_key_only(key_pair: tuple[str, str]) -> None:
    private, public = key_pair
    document = jwks([public])
    (key,) = document["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
    assert "d" not in key
    # The published key verifies a token the vault issued (checked with joserfc).
    token = _token(private, public)
    decoded = rfc_jwt.decode(token, ECKey.import_key(key), algorithms=["ES256"])
    assert decoded.claims["sub"] == "tina"
