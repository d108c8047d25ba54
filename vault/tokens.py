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
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jose import jwk, jwt
from jose.exceptions import JOSEError

from vault.errors import Unauthenticated
from vault.oidc import JwksClient
from vault.token_keys import key_id

# Header parameters that point at keys; honouring any of them lets the sender pick the key.
KEY_HEADERS = ("jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit")
OIDC_REQUIRED = ("exp", "iat", "iss", "aud")
KEY_TYPES = {"RS": "RSA", "ES": "EC"}  # the key type each pinnable algorithm family needs
LEEWAY_SECONDS = 30  # clock skew tolerated between an OIDC issuer and the vault

ALGORITHM = "ES256"
REQUIRED = ("exp", "iat", "iss", "aud", "sub", "jti")

__all__ = ["Claims", "Identity", "TokenGate", "TokenRefused", "issue_token", "jwks", "key_id"]


@dataclass(frozen=True)
class Claims:
    """The verified claims the vault uses: the account (name, immutable id, generation), the
    role it had at issue, and the token's id and expiry."""

    subject: str
    role: str
    token_id: str
    account_id: str
    generation: int
    expires: int


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
    account_id: str,
    generation: int,
    token_id: str,
    issuer: str,
    audience: str,
    ttl: timedelta,
    now: datetime,
) -> str:
    """Return a signed ES256 token `token_id` for `subject` valid for `ttl` from `now`.

    It is bound to the account's immutable id and generation (`uid`, `gen`); the vault accepts
    it only while its register row says so (`vault.credentials`).
    """
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": token_id,
        "role": role,
        "uid": account_id,
        "gen": generation,
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
    texts = [claims.get(name) for name in ("sub", "role", "jti", "uid")]
    generation, expires = claims.get("gen"), claims.get("exp")
    if not all(isinstance(value, str) and value for value in texts) or not (
        type(generation) is int and type(expires) is int
    ):
        raise Unauthenticated("invalid or expired token")
    subject, role, token_id, account_id = (str(value) for value in texts)
    return Claims(subject, role, token_id, account_id, generation, expires)


def jwks(public_pems: Iterable[str]) -> dict[str, Any]:
    """Return the JWK Set (RFC 7517) that publishes `public_pems` for token verification."""
    published = []
    for pem in public_pems:
        key: dict[str, Any] = jwk.construct(pem, ALGORITHM).to_dict()
        key.update({"kid": key_id(pem), "use": "sig", "alg": ALGORITHM})
        published.append(key)
    return {"keys": published}


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
    gives (OIDC: mapped from its claims; local: the one in the token), and its issuer.

    The vault's own tokens also carry `claims` (token id, account id and generation), which the
    caller checks against the register before trusting them.
    """

    subject: str
    roles: frozenset[str]
    issuer: str
    local: bool
    claims: Claims | None = None


@dataclass(frozen=True)
class TokenGate:
    """Verify bearer tokens: the vault's own or an OIDC issuer's (`issuers`).

    `local_keys` maps a `kid` to the PEM of a live token verification key of the vault (the
    current one and, after a rotation, the previous one until its tokens have expired), or None.
    """

    local_keys: Callable[[str], str | None]
    local_issuer: str
    local_audience: str
    issuers: Mapping[str, JwksClient]
    max_token_bytes: int

    def authenticate(
        self, token: str, *, audience: str | None = None, nonce: str | None = None
    ) -> Identity:
        """Return the identity `token` proves. Raises `TokenRefused` (with its reason).

        For an OIDC ID token of the web sign-in, `audience` (the client id) replaces the
        issuer's configured audience and the token must carry `nonce` (OIDC Core 3.1.3.7).
        """
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
        return _oidc(token, client, dict(key), str(alg), audience, nonce)

    def _local(self, token: str, kid: str) -> Identity:
        public_pem = self.local_keys(kid)
        if public_pem is None:
            raise TokenRefused("unknown kid")
        try:
            claims = verify_token(
                token, public_pem, issuer=self.local_issuer, audience=self.local_audience
            )
        except Unauthenticated as exc:
            raise TokenRefused("signature or claims invalid") from exc
        return Identity(claims.subject, frozenset({claims.role}), self.local_issuer, True, claims)


def _oidc(
    token: str,
    client: JwksClient,
    key: dict[str, Any],
    alg: str,
    audience: str | None = None,
    nonce: str | None = None,
) -> Identity:
    config = client.issuer
    options: dict[str, Any] = {f"require_{claim}": True for claim in OIDC_REQUIRED}
    options["leeway"] = LEEWAY_SECONDS
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience or config.audience,
            issuer=config.issuer,
            options=options,
        )
    except (JOSEError, ValueError, TypeError) as exc:
        # JOSEError, not only JWTError: a key that does not fit raises JWKError (python-jose).
        raise TokenRefused("signature or claims invalid") from exc
    given = claims.get("nonce")
    if nonce is not None and not (isinstance(given, str) and hmac.compare_digest(given, nonce)):
        raise TokenRefused("nonce does not match the sign-in")
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
