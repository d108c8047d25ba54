"""The JWKS client against a real HTTP server on 127.0.0.1: what it keeps, when it fetches."""

from __future__ import annotations

from joserfc.jwk import RSAKey

from tests.e2e.keyhost_support import KeyHost
from vault.oidc import JwksClient
from vault.settings import OidcIssuer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def issuer(url: str) -> OidcIssuer:
    return OidcIssuer(
        issuer="http://127.0.0.1/realms/t",
        jwks_url=url,
        audience="tvault",
        jwks_cache_seconds=600,
        jwks_min_refetch_seconds=30,
        jwks_timeout_seconds=2,
    )


def test_only_public_signing_keys_with_a_kid_are_kept() -> None:
    signing = RSAKey.generate_key(2048, parameters={"kid": "sig"})
    host = KeyHost(
        [
            signing.as_dict(private=True),  # a private key published by mistake
            {**signing.as_dict(private=False), "kid": "enc", "use": "enc"},
            {**signing.as_dict(private=False), "kid": None},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        ]
    )
    try:
        client = JwksClient(issuer(host.url), clock=Clock())
        key = client.key("sig")
        assert key is not None and "d" not in key and key["n"] == signing.as_dict()["n"]
        assert client.key("enc") is None and client.key("hmac") is None
    finally:
        host.stop()


def test_fetches_once_refetches_rarely_and_keeps_keys_when_the_issuer_is_down() -> None:
    signing = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    host = KeyHost([signing.as_dict(private=False)])
    clock = Clock()
    client = JwksClient(issuer(host.url), clock=clock)
    try:
        assert client.key("k1") is not None and host.requests == 1
        assert client.key("k1") is not None and host.requests == 1  # cached
        for n in range(10):
            assert client.key(f"made-up-{n}") is None
        assert host.requests == 1  # unknown kids within jwks_min_refetch_seconds: no fetch
        clock.now += 31
        assert client.key("made-up") is None and host.requests == 2  # one refetch, then quiet
        assert client.key("made-up-again") is None and host.requests == 2
        clock.now += 601
        assert client.key("k1") is not None and host.requests == 3  # stale: fetched again
    finally:
        host.stop()
    clock.now += 601
    assert client.key("k1") is not None  # the issuer is down: the cached key stays in use
    assert client.fetches == 4
