"""What access checks cost per request: token verification (the vault's ES256, an OIDC issuer's
RS256 with its JWKS cached) and `policies.decide`.

Run: .venv/bin/python bench/access.py   (prints a Markdown table; no server, no network: the
OIDC issuer's JWKS is served from memory through httpx's transport seam)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The repository first, and not this directory: bench/search.py would shadow the `search` package.
sys.path[:] = [str(Path(__file__).resolve().parents[1])] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx  # noqa: E402
from joserfc import jwt as rfc_jwt  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

import keys  # noqa: E402
import policies  # noqa: E402
from policies import Principal, Resource  # noqa: E402
from vault.api.auth import TokenGate, issue_token, key_id  # noqa: E402
from vault.oidc import JwksClient  # noqa: E402
from vault.settings import OidcIssuer  # noqa: E402


def per_second(run: Callable[[], object], seconds: float = 1.5) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    private = keys.generate_token_key()
    public = keys.public_pem(private)
    now = datetime.now(UTC)
    local = issue_token(
        private, public, subject="tina", role="therapist", issuer="urn:tvault:bench",
        audience="tvault", ttl=timedelta(hours=1), now=now,
    )  # fmt: skip
    rsa = RSAKey.generate_key(2048, parameters={"kid": "kc-1"})
    document = json.dumps({"keys": [rsa.as_dict(private=False)]}).encode()
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=document))
    issuer = OidcIssuer(
        issuer="http://kc/realms/t", jwks_url="http://kc/certs", audience="tvault",
        role_map={"tvault-lawyer": "lawyer"},
    )  # fmt: skip
    claims = {
        "iss": issuer.issuer, "aud": "tvault", "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + 3600, "preferred_username": "lena",
        "realm_access": {"roles": ["tvault-lawyer"]},
    }  # fmt: skip
    oidc = rfc_jwt.encode({"alg": "RS256", "kid": "kc-1"}, claims, rsa)
    gate = TokenGate(
        local_pem=public,
        local_issuer="urn:tvault:bench",
        local_audience="tvault",
        issuers={issuer.issuer: JwksClient(issuer, transport=transport)},
        max_token_bytes=8192,
    )
    assert key_id(public)
    lawyer = Principal("lena", frozenset({"lawyer"}), {"case-1": frozenset({"lawyer"})})
    item = Resource("item", "case-1", "item-1", depositor="tina", consent=frozenset({"legal"}))
    rows = [
        ("vault ES256 token verified (TokenGate)", per_second(lambda: gate.authenticate(local))),
        ("OIDC RS256 token verified, JWKS cached", per_second(lambda: gate.authenticate(oidc))),
        ("policies.decide (lawyer, item.read)", per_second(
            lambda: policies.decide(lawyer, "item.read", item))),
    ]  # fmt: skip
    print("| operation | per second (1 thread) |\n| --- | ---: |")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
