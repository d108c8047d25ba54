"""Access tokens: the vault's own ES256 tokens (issue, verify, publish) and tokens of configured
OpenID Connect issuers (verify). The only module using jose.

Verification pins the algorithm (`algorithms=["ES256"]`; per issuer for OIDC) and requires
`exp`, `iat`, `iss`, `aud` (and `sub`, `jti` for our own): python-jose otherwise accepts a
token without `exp` or `aud`, and any algorithm the key fits (NOTES.md, python-jose 3.5.0).
Before any key is looked up, `TokenGate` refuses what no honest client sends: oversized
tokens, JWE (five parts), a missing `kid`, and headers that name keys or key locations
(`jku`, `x5u`, `jwk`, `x5c`: RFC 8725 3.10 warns against fetching or trusting them) or
critical extensions (`crit`).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jose import jwk, jwt
from jose.exceptions import JOSEError

from vault.errors import Unauthenticated
from vault.oidc import JwksClient

# Header parameters that point at keys; honouring any of them lets the sender pick the key.
KEY_HEADERS = ("jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit")
OIDC_REQUIRED = ("exp", "iat", "iss", "aud")
KEY_TYPES = {"RS": "RSA", "ES": "EC"}  # the key type each pinnable algorithm family needs
LEEWAY_SECONDS = 30  # clock skew tolerated between an OIDC issuer and the vault

ALGORITHM = "ES256"
REQUIRED = ("exp", "iat", "iss", "aud", "sub", "jti")


@dataclass(frozen=True)
class Claims:
    """The verified claims the vault uses."""

    subject: str
    role: str
    token_id: str


@functools.lru_cache(maxsize=8)
def key_id(public_pem: str) -> str:
    """Return the `kid` of a token verification key: a digest of its PEM."""
    return hashlib.sha256(public_pem.encode("ascii")).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _verification_key(public_pem: str) -> jwk.Key:
    # Parsed once per key, not per request: given a PEM string, python-jose first tries it as
    # JSON, then parses the PEM, on every call (about a third of a token check). A public key
    # only; the algorithm stays pinned by `algorithms=` at each check.
    return jwk.construct(public_pem, ALGORITHM)


def issue_token(
    private_pem: str,
    public_pem: str,
    *,
    subject: str,
    role: str,
    issuer: str,
    audience: str,
    ttl: timedelta,
    now: datetime,
) -> str:
    """Return a signed ES256 token for `subject` valid for `ttl` from `now`."""
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": secrets.token_urlsafe(16),
        "role": role,
    }
    token: str = jwt.encode(
        claims, private_pem, algorithm=ALGORITHM, headers={"kid": key_id(public_pem)}
    )
    return token


def verify_token(token: str, public_pem: str, *, issuer: str, audience: str) -> Claims:
    """Verify `token` and return its claims.

    Raises `Unauthenticated` on any failure (signature, algorithm, expiry, issuer, audience,
    a missing claim); the reason is deliberately not told apart.
    """
    options = {f"require_{claim}": True for claim in REQUIRED}
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _verification_key(public_pem),
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options=options,
        )
    except (JOSEError, ValueError, TypeError) as exc:
        raise Unauthenticated("invalid or expired token") from exc
    subject, role, token_id = claims.get("sub"), claims.get("role"), claims.get("jti")
    if not isinstance(subject, str) or not isinstance(role, str) or not isinstance(token_id, str):
        raise Unauthenticated("invalid or expired token")
    return Claims(subject=subject, role=role, token_id=token_id)


def jwks(public_pem: str) -> dict[str, Any]:
    """Return the JWK Set (RFC 7517) that publishes `public_pem` for token verification."""
    key: dict[str, Any] = jwk.construct(public_pem, ALGORITHM).to_dict()
    key.update({"kid": key_id(public_pem), "use": "sig", "alg": ALGORITHM})
    return {"keys": [key]}


class TokenRefused(Unauthenticated):
    """A token was refused; the client sees one message, `reason` (for the ledger) says why.

    `reason` is one of a fixed set of phrases chosen here, never text taken from the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("invalid or expired token")
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for: `subject` (the account name), the roles the token
    gives (OIDC: mapped from its claims; local: the one in the token), and its issuer."""

    subject: str
    roles: frozenset[str]
    issuer: str
    local: bool


@dataclass(frozen=True)
class TokenGate:
    """Verify bearer tokens: the vault's own (`local_pem`) or an OIDC issuer's (`issuers`)."""

    local_pem: str
    local_issuer: str
    local_audience: str
    issuers: Mapping[str, JwksClient]
    max_token_bytes: int

    def authenticate(self, token: str) -> Identity:
        """Return the identity `token` proves. Raises `TokenRefused` (with its reason)."""
        if len(token) > self.max_token_bytes:
            raise TokenRefused("oversized token")
        parts = token.split(".")
        if len(parts) == 5:
            raise TokenRefused("encrypted token (JWE) refused")
        if len(parts) != 3:
            raise TokenRefused("malformed token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.get_unverified_claims(token)
        except (JOSEError, ValueError, TypeError) as exc:
            raise TokenRefused("malformed token") from exc
        named = [name for name in KEY_HEADERS if name in header]
        if named:
            raise TokenRefused(f"header {named[0]} refused")
        kid, alg, issuer = header.get("kid"), header.get("alg"), unverified.get("iss")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("no kid")
        if issuer == self.local_issuer:
            return self._local(token, kid)
        client = self.issuers.get(issuer) if isinstance(issuer, str) else None
        if client is None:
            raise TokenRefused("unknown issuer")
        if alg not in client.issuer.algorithms:
            raise TokenRefused("algorithm not allowed for the issuer")
        key = client.key(kid)
        if key is None:
            raise TokenRefused("unknown kid")
        if key.get("alg") not in (None, alg) or key.get("kty") != KEY_TYPES[str(alg)[:2]]:
            raise TokenRefused("key not meant for the token's algorithm")
        return _oidc(token, client, dict(key), str(alg))

    def _local(self, token: str, kid: str) -> Identity:
        if kid != key_id(self.local_pem):
            raise TokenRefused("unknown kid")
        try:
            claims = verify_token(
                token, self.local_pem, issuer=self.local_issuer, audience=self.local_audience
            )
        except Unauthenticated as exc:
            raise TokenRefused("signature or claims invalid") from exc
        return Identity(claims.subject, frozenset({claims.role}), self.local_issuer, True)


def _oidc(token: str, client: JwksClient, key: dict[str, Any], alg: str) -> Identity:
    config = client.issuer
    options: dict[str, Any] = {f"require_{claim}": True for claim in OIDC_REQUIRED}
    options["leeway"] = LEEWAY_SECONDS
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=config.audience,
            issuer=config.issuer,
            options=options,
        )
    except (JOSEError, ValueError, TypeError) as exc:
        # JOSEError, not only JWTError: a key that does not fit raises JWKError (python-jose).
        raise TokenRefused("signature or claims invalid") from exc
    subject = _claim(claims, config.subject_claim)
    if not isinstance(subject, str) or not subject:
        raise TokenRefused("no subject claim")
    raw = _claim(claims, config.roles_claim)
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    mapping = config.role_map
    roles = frozenset(mapping[v] for v in values if isinstance(v, str) and v in mapping)
    if not roles:
        raise TokenRefused("no mapped role")
    return Identity(subject, roles, config.issuer, False)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value
