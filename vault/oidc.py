"""JWKS of the configured OpenID Connect issuers: fetched with httpx, cached, refetched rarely.

Threats this module answers (docs/access.md): a token's `kid` is attacker-chosen, so an unknown
`kid` may trigger a refetch only once per `jwks_min_refetch_seconds` (no refetch storm against
the issuer); the JWKS address comes from configuration only, never from a token (`jku`/`x5u`
are refused before this module is asked); redirects are not followed; keys meant for
encryption are dropped. Verification itself (the one place `jose` is used) is in
`vault.tokens`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from vault.settings import OidcIssuer

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024
SIGNING_KEY_TYPES = frozenset({"RSA", "EC"})


class JwksClient:
    """The signing keys of one issuer's JWKS, by `kid`. Thread-safe."""

    def __init__(
        self,
        issuer: OidcIssuer,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.issuer = issuer
        self._clock = clock
        self._transport = transport
        self._keys: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # for tests and operators: how often the issuer was asked

    def key(self, kid: str) -> Mapping[str, Any] | None:
        """Return the JWK with `kid`, fetching the JWKS when the cache is empty or stale, or
        when `kid` is unknown and the last fetch is older than `jwks_min_refetch_seconds`.

        Returns None when no such key exists (or the issuer cannot be reached).
        """
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or (
                now - self._fetched_at >= self.issuer.jwks_cache_seconds
            )
            unknown = kid not in self._keys
            may_refetch = self._fetched_at is None or (
                now - self._fetched_at >= self.issuer.jwks_min_refetch_seconds
            )
            if stale or (unknown and may_refetch):
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        # The time is recorded even when the fetch fails: a failing issuer is not hammered.
        self._fetched_at = now
        self.fetches += 1
        try:
            with httpx.Client(
                timeout=self.issuer.jwks_timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
            ) as client:
                response = client.get(self.issuer.jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Keep the keys we had: an outage of the issuer must not log everyone out at once.
            log.warning("JWKS of %s not fetched: %s", self.issuer.issuer, type(exc).__name__)
            return
        self._keys = MappingProxyType(_signing_keys(document))


def _signing_keys(document: object) -> dict[str, Mapping[str, Any]]:
    keys: dict[str, Mapping[str, Any]] = {}
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return keys
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid, kty = jwk.get("kid"), jwk.get("kty")
        if not isinstance(kid, str) or not kid or kty not in SIGNING_KEY_TYPES:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        # A private key published by mistake must not make us hold private material.
        public = {k: v for k, v in jwk.items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}
        keys.setdefault(kid, MappingProxyType(public))
    return keys


def clients_for(issuers: tuple[OidcIssuer, ...]) -> dict[str, JwksClient]:
    """Return one `JwksClient` per configured issuer, by issuer (`iss`) string."""
    return {issuer.issuer: JwksClient(issuer) for issuer in issuers}
