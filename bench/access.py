"""What access checks cost per request: token verification (the vault's ES256, an OIDC issuer's
RS256 with its JWKS cached), the principal's lookup in the database, and `policies.decide`; and
whether an item route refuses a hidden item and an unknown id in the same time (issue 16: timing
must not tell them apart).

The lookup is measured twice in one run, on one SQLite vault: as each request makes it now (the
token's register row, account id and generation checked with the account and its grants, one
query) and as it was before tokens were registered (the account and its grants by name), so
their ratio holds whatever the machine's load.

Run: .venv/bin/python bench/access.py   (prints Markdown tables; no server, no network: the
OIDC issuer's JWKS is served from memory through httpx's transport seam; the refusals run on a
throw-away SQLite vault under /tmp)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
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
from vault import credentials  # noqa: E402
from vault.accounts import add_user, find_user, principal_named, principal_of  # noqa: E402
from vault.api.deps import _resolve  # noqa: E402
from vault.cases import create_case, grant  # noqa: E402
from vault.compose import gatekeeping  # noqa: E402
from vault.deposit import Deposit  # noqa: E402
from vault.errors import NotFound  # noqa: E402
from vault.ids import new_id  # noqa: E402
from vault.oidc import JwksClient  # noqa: E402
from vault.provision import create_vault  # noqa: E402
from vault.retrieve import show_item  # noqa: E402
from vault.settings import OidcIssuer, load_settings  # noqa: E402
from vault.tokens import TokenGate, issue_token, key_id  # noqa: E402

CALLS = 600


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
        private, public, subject="tina", role="therapist", account_id="a" * 26, generation=1,
        token_id="bench", issuer="urn:tvault:bench", audience="tvault", ttl=timedelta(hours=1),  # noqa: S106
        now=now,
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
        local_keys={key_id(public): public}.get,
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
        *lookups(),
        ("OIDC RS256 token verified, JWKS cached", per_second(lambda: gate.authenticate(oidc))),
        ("policies.decide (lawyer, item.read)", per_second(
            lambda: policies.decide(lawyer, "item.read", item))),
    ]  # fmt: skip
    print("| operation | per second (1 thread) |\n| --- | ---: |")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    hidden_vs_missing()


def lookups() -> list[tuple[str, float]]:
    """The principal of a request with a vault token, on a fresh SQLite vault."""
    with tempfile.TemporaryDirectory() as home:
        fast = keys.KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
        vault = create_vault(load_settings(Path(home) / "v"), "bench only", "admin", kdf=fast)
        try:
            with vault.sessions.begin() as session:
                add_user(session, "lena", "lawyer", vault.clock())
            token = credentials.issue(vault, "lena", ttl_seconds=3600).token
            gate, seen = gatekeeping(vault).gate, set[tuple[str, str]]()
            _resolve(vault, gate, token, seen)  # warm the key cache

            def by_name() -> object:
                gate.authenticate(token)
                with vault.sessions() as session:
                    return principal_named(session, "lena")

            # Alternating short rounds, medians: the machine is shared, so only a ratio taken
            # within one run means anything.
            now, before = [], []
            for _ in range(8):
                now.append(per_second(lambda: _resolve(vault, gate, token, seen), 0.4))
                before.append(per_second(by_name, 0.4))
            return [
                ("request principal: token + register check (SQLite, now)", statistics.median(now)),
                ("request principal: token + lookup by name (SQLite, before)",
                 statistics.median(before)),
            ]  # fmt: skip
        finally:
            vault.close()


def hidden_vs_missing() -> None:
    """Time `GET /v1/items/{id}`'s use case refusing a hidden item and an unknown id, in
    alternating rounds (the machine is shared: only a ratio within one run means anything)."""
    with tempfile.TemporaryDirectory(prefix="tvault-bench-") as home:
        kdf = keys.KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
        vault = create_vault(load_settings(Path(home)), "bench passphrase", "admin", kdf=kdf)
        try:
            with vault.sessions.begin() as session:
                for name, role in (("tina", "therapist"), ("theo", "therapist")):
                    add_user(session, name, role, vault.clock())

            def who(name: str) -> Principal:
                with vault.sessions() as session:
                    return principal_of(session, find_user(session, name))

            case_id = create_case(vault, who("tina"), "bench").id
            grant(vault, who("admin"), case_id, "theo", "therapist")
            fields = {"case": case_id, "kind": "testimony", "title": "T", "consent": "legal"}
            job = Deposit.start(vault, who("tina"), fields)
            job.write(b"legal-only testimony")
            hidden = job.commit().item_id
            theo = who("theo")

            def refuse(item_id: str) -> None:
                try:
                    show_item(vault, theo, item_id)
                except NotFound:
                    return
                raise AssertionError("the refusal did not happen")

            times: dict[str, list[float]] = {"hidden": [], "missing": []}
            for n in range(CALLS):
                # One call of each per step, their order alternating, so a drift in the
                # machine's load weighs on both alike; medians shrug off the spikes.
                pair = (("hidden", hidden), ("missing", new_id()))  # unknown, well-formed
                for label, item_id in pair if n % 2 else pair[::-1]:
                    start = time.perf_counter()
                    refuse(item_id)
                    times[label].append((time.perf_counter() - start) * 1e6)
        finally:
            vault.close()
    medians = {label: statistics.median(values) for label, values in times.items()}
    print("\n| refusal by an item route (SQLite, ledger entry included) | median us |")
    print("| --- | ---: |")
    print(f"| hidden item (therapist on a legal-only item) | {medians['hidden']:,.0f} |")
    print(f"| unknown id | {medians['missing']:,.0f} |")
    print(f"| ratio missing / hidden | {medians['missing'] / medians['hidden']:.3f} |")


if __name__ == "__main__":
    main()
