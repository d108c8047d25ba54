"""ES256 access tokens for local accounts: issue, verify, publish (the only module using jose).

Verification pins the algorithm (`algorithms=["ES256"]`) and requires `exp`, `iat`, `iss`,
`aud`, `sub` and `jti`: python-jose otherwise accepts a token without `exp` or `aud`, and any
algorithm the key fits (NOTES.md, python-jose 3.5.0).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jose import JWTError, jwk, jwt

from vault.errors import Unauthenticated

ALGORITHM = "ES256"
REQUIRED = ("exp", "iat", "iss", "aud", "sub", "jti")


@dataclass(frozen=True)
class Claims:
    """The verified claims the vault uses."""

    subject: str
    role: str
    token_id: str


def key_id(public_pem: str) -> str:
    """Return the `kid` of a token verification key: a digest of its PEM."""
    return hashlib.sha256(public_pem.encode("ascii")).hexdigest()[:16]


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
            public_pem,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options=options,
        )
    except (JWTError, ValueError, TypeError) as exc:
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
