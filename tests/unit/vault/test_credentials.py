"""Every credential is accountable and can be cut off (DESIGN.md promise 9; issue 16 point 4).

Two apps on one database stand for two server processes: each opens the vault on its own
(engine, keyring, caches), as `tvault serve` processes on one PostgreSQL do.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select
from typer.testing import CliRunner

import vault as vault_package
from tests.unit.vault.api_support import TestClient
from tests.unit.vault.conftest import PASSPHRASE
from tests.unit.vault.tokens import token_for
from vault import credentials, ledger
from vault.accounts import OFFLINE_ACTOR, add_user, change_role, set_disabled
from vault.cli import app as cli
from vault.compose import app_of, open_vault
from vault.db import User
from vault.db.credential_tables import AccessToken
from vault.errors import BadField
from vault.parts import Vault
from vault.token_keys import TokenKeys, current_kid, signing_key
from vault.tokens import issue_token

URL = "http://vault.test"


def client(app: FastAPI, token: str) -> TestClient:
    return TestClient(app, base_url=URL, headers={"Authorization": f"Bearer {token}"})


def entries(vault: Vault, action: str) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [e for e in ledger.entries(session) if e.action == action]


def denials(vault: Vault) -> list[str]:
    return [str(e.details["reason"]) for e in entries(vault, ledger.actions.ACCESS_DENIED)]


@pytest.fixture
def other(vault: Vault) -> Iterator[Vault]:
    """The same vault opened a second time: another server process, to the database."""
    second = open_vault(vault.settings, PASSPHRASE)
    yield second
    second.close()


def test_account_and_token_changes_are_ledger_entries_saying_who_for_whom_and_how(
    vault: Vault,
) -> None:
    admin = client(app_of(vault), token_for(vault, "admin", "custodian"))
    created = entries(vault, ledger.actions.ACCOUNT_CREATION)[-1]  # the fixture adds lena last
    assert created.actor == OFFLINE_ACTOR
    assert created.details["account"] == "lena" and created.details["role"] == "lawyer"
    assert created.details["via"] == "offline" and len(str(created.details["account_id"])) == 26

    offline = credentials.issue(vault, "lena", ttl_seconds=600)
    by_api = admin.post("/v1/users/lena/tokens", json={"ttl_seconds": 300})
    assert by_api.status_code == 201 and by_api.headers["cache-control"] == "no-store"
    issued = entries(vault, ledger.actions.TOKEN_ISSUANCE)
    first, second = issued[-2:]
    assert (first.actor, first.details["via"], first.details["token"]) == (
        OFFLINE_ACTOR,
        "offline",
        offline.token_id,
    )
    assert first.details["account"] == "lena" and first.details["generation"] == 1
    assert first.details["expires"] == offline.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (second.actor, second.details["via"], second.details["token"]) == (
        "admin",
        "api",
        by_api.json()["token_id"],
    )

    assert admin.put("/v1/users/lena/role", json={"role": "advocate"}).json()["changed"]
    assert admin.post("/v1/users/lena/disable").json()["changed"]
    assert admin.post("/v1/users/lena/enable").json()["changed"]
    revoked = admin.delete(f"/v1/tokens/{offline.token_id}")
    assert revoked.status_code == 200 and revoked.json()["changed"] is True
    assert admin.delete(f"/v1/tokens/{offline.token_id}").json()["changed"] is False

    [role] = entries(vault, ledger.actions.ROLE_CHANGE)
    assert (role.actor, role.details["role"], role.details["previous"]) == (
        "admin",
        "advocate",
        "lawyer",
    )
    assert [
        (e.details["disabled"], e.details["generation"])
        for e in entries(vault, ledger.actions.ACCOUNT_STATE)
    ] == [(True, 3), (False, 3)]
    [revocation] = entries(vault, ledger.actions.TOKEN_REVOCATION)  # once, not twice
    assert (revocation.actor, revocation.details["token"], revocation.details["via"]) == (
        "admin",
        offline.token_id,
        "api",
    )
    assert revocation.details["account"] == "lena"
    assert revocation.details["expires"] == first.details["expires"]


def test_a_deleted_account_re_added_with_another_role_never_revives_its_old_tokens(
    vault: Vault,
) -> None:
    app = app_of(vault)
    old = token_for(vault, "lena", "lawyer")
    assert client(app, old).get("/v1/me").json()["roles"] == ["lawyer"]
    with vault.sessions.begin() as session:
        session.execute(delete(User).where(User.name == "lena"))
        add_user(session, "lena", "custodian", vault.clock())
    assert client(app, old).get("/v1/me").status_code == 401
    assert denials(vault)[-1] == "account replaced since the token was issued"
    assert client(app, token_for(vault, "lena", "custodian")).get("/v1/me").json()["roles"] == [
        "custodian"
    ]


def test_a_token_signed_with_the_vault_key_but_never_issued_is_refused(vault: Vault) -> None:
    # What a thief of the signing key could make: right key, right claims, no register row.
    app = app_of(vault)
    key = signing_key(vault.keyring)
    with vault.sessions() as session:
        lena = session.scalar(select(User).where(User.name == "lena"))
        assert lena is not None
    forged = issue_token(
        key.private_pem,
        key.public_pem,
        subject="lena",
        role="lawyer",
        account_id=lena.id,
        generation=lena.generation,
        token_id="made-up",
        issuer=vault.settings.token_issuer,
        audience=vault.settings.token_audience,
        ttl=timedelta(minutes=5),
        now=vault.clock(),
    )
    assert client(app, forged).get("/v1/me").status_code == 401
    assert denials(vault)[-1] == "token not issued by this vault"


def test_revocation_disabling_and_role_change_act_on_the_next_request_of_every_process(
    vault: Vault, other: Vault
) -> None:
    first, second = app_of(vault), app_of(other)
    admin = client(first, token_for(vault, "admin", "custodian"))
    revoked, disabled = token_for(vault, "lena", "lawyer"), token_for(vault, "tina", "therapist")
    theo = token_for(vault, "theo", "therapist")
    for token in (revoked, disabled, theo):
        assert client(first, token).get("/v1/me").status_code == 200
        assert client(second, token).get("/v1/me").status_code == 200

    jti = issued_ids(vault, "lena")[0]
    assert admin.delete(f"/v1/tokens/{jti}").status_code == 200  # through the first process
    assert client(second, revoked).get("/v1/me").status_code == 401
    assert denials(other)[-1] == "token revoked"

    with other.sessions.begin() as session:  # offline, with the passphrase, from elsewhere
        set_disabled(session, "tina", True, other.clock(), actor=OFFLINE_ACTOR, via="offline")
    assert client(first, disabled).get("/v1/me").status_code == 401
    assert client(second, disabled).get("/v1/me").status_code == 401
    with vault.sessions.begin() as session:
        set_disabled(session, "tina", False, vault.clock(), actor=OFFLINE_ACTOR, via="offline")
    # Enabled again, but tokens issued before the disabling stay dead.
    assert client(second, disabled).get("/v1/me").status_code == 401
    assert client(second, token_for(vault, "tina", "therapist")).get("/v1/me").status_code == 200

    with vault.sessions.begin() as session:
        change_role(session, "theo", "lawyer", vault.clock(), actor=OFFLINE_ACTOR, via="offline")
    assert client(second, theo).get("/v1/me").status_code == 401
    assert denials(other)[-1] == "account changed since the token was issued"


def _b64(document: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def issued_ids(vault: Vault, name: str) -> list[str]:
    with vault.sessions() as session:
        account = session.scalar(select(User.id).where(User.name == name))
        return list(
            session.scalars(select(AccessToken.jti).where(AccessToken.account_id == account))
        )


def test_only_custodians_manage_credentials_and_unknown_tokens_are_not_found(
    vault: Vault,
) -> None:
    app = app_of(vault)
    lena = client(app, token_for(vault, "lena", "lawyer"))
    jti = issued_ids(vault, "lena")[0]
    assert lena.delete(f"/v1/tokens/{jti}").status_code == 403
    assert lena.post("/v1/users/tina/tokens", json={}).status_code == 403
    assert lena.post("/v1/users/tina/disable").status_code == 403
    admin = client(app, token_for(vault, "admin", "custodian"))
    assert admin.delete("/v1/tokens/nothing-like-it").status_code == 404
    listed = admin.get("/v1/users/lena/tokens").json()
    assert [r["token_id"] for r in listed] == [jti] and "token" not in listed[0]
    # A custodian may not lock themselves out: disabling or demoting oneself is refused.
    assert admin.post("/v1/users/admin/disable").status_code == 409
    assert admin.put("/v1/users/admin/role", json={"role": "auditor"}).status_code == 409
    assert admin.get("/v1/users/lena/tokens").status_code == 200


def test_a_lifetime_beyond_the_maximum_is_refused_with_a_usage_error(vault: Vault) -> None:
    maximum = vault.settings.token_max_ttl_seconds
    assert maximum == 12 * 3600
    with pytest.raises(BadField, match="exceeds the maximum token lifetime"):
        credentials.issue(vault, "lena", ttl_seconds=maximum + 1)
    admin = client(app_of(vault), token_for(vault, "admin", "custodian"))
    refused = admin.post("/v1/users/lena/tokens", json={"ttl_seconds": maximum + 1})
    assert refused.status_code == 422 and "TVAULT_TOKEN_MAX_TTL_SECONDS" in refused.text
    env = {"TVAULT_HOME": str(vault.settings.home), "TVAULT_PASSPHRASE": PASSPHRASE}
    if vault.settings.database_url:
        env["TVAULT_DATABASE_URL"] = vault.settings.database_url
    done = CliRunner().invoke(cli, ["token", "lena", "--ttl", str(maximum + 1)], env=env)
    assert done.exit_code == 2
    assert "--ttl: 43201 s exceeds the maximum token lifetime of 43200 s" in done.output
    assert CliRunner().invoke(cli, ["token", "lena", "--ttl", "60"], env=env).exit_code == 0


def test_the_token_key_rotates_with_overlap_then_the_old_key_drops_out(
    vault: Vault, other: Vault
) -> None:
    app = app_of(vault)  # a server that started before the rotation
    ticks = [0.0]  # the cache's pace, in seconds
    app.state.token_keys = TokenKeys(
        vault.sessions, lambda: vault.clock(), monotonic=lambda: ticks[0]
    )
    app.state.gate = dataclasses.replace(app.state.gate, local_keys=app.state.token_keys)
    jwks = TestClient(app, base_url=URL)
    old = token_for(vault, "lena", "lawyer")
    old_kid = signing_key(vault.keyring).kid
    assert [k["kid"] for k in jwks.get("/.well-known/jwks.json").json()["keys"]] == [old_kid]

    made_up = old.replace(old.split(".")[0], _b64({"alg": "ES256", "kid": "made-up"}), 1)
    assert client(app, made_up).get("/v1/me").status_code == 401

    done = credentials.rotate_token_key(other, "admin")  # `tvault keys rotate --tokens`
    assert done.previous == old_kid and done.kid != old_kid
    assert done.previous_until is not None
    assert done.previous_until >= other.clock() + timedelta(hours=12) - timedelta(seconds=5)
    [rotation] = entries(vault, ledger.actions.KEY_ROTATION)
    assert rotation.actor == "admin" and rotation.details["key"] == "token-signing"
    assert (rotation.details["kid"], rotation.details["previous"]) == (done.kid, old_kid)

    new = credentials.issue(other, "tina", ttl_seconds=600).token
    # An unknown kid makes the cache read the database again, at most once a second: made-up
    # kids cannot flood it. The made-up one before the rotation paces this one.
    assert client(app, new).get("/v1/me").status_code == 401
    ticks[0] += 1.0
    assert client(app, new).get("/v1/me").status_code == 200
    assert client(app, old).get("/v1/me").status_code == 200  # the overlap
    published = [k["kid"] for k in jwks.get("/.well-known/jwks.json").json()["keys"]]
    assert published == [done.kid, old_kid]
    # A process that opened the keyring before the rotation reads it again to sign with the
    # new key, never the superseded one.
    reissued = credentials.issue(vault, "lena", ttl_seconds=60).token
    assert json.loads(base64.urlsafe_b64decode(reissued.split(".")[0] + "=="))["kid"] == done.kid

    later = done.previous_until + timedelta(seconds=1)
    vault.clock = lambda: later
    published = [k["kid"] for k in jwks.get("/.well-known/jwks.json").json()["keys"]]
    assert published == [done.kid]
    assert client(app, old).get("/v1/me").status_code == 401
    assert denials(vault)[-1] == "unknown kid"


def test_an_oidc_principal_s_first_use_is_a_ledger_entry_once_per_account(
    vault: Vault,
) -> None:
    from joserfc import jwt as rfc_jwt
    from joserfc.jwk import RSAKey

    from vault.oidc import JwksClient
    from vault.settings import OidcIssuer
    from vault.tokens import TokenGate

    rsa = RSAKey.generate_key(2048, parameters={"kid": "kc-1"})
    document = json.dumps({"keys": [rsa.as_dict(private=False)]}).encode()
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=document))
    issuer = OidcIssuer(
        issuer="http://127.0.0.1:8080/realms/t",
        jwks_url="http://127.0.0.1:8080/certs",
        audience="tvault",
        role_map={"tvault-lawyer": "lawyer"},
    )
    app = app_of(vault)
    app.state.gate = TokenGate(
        local_keys=app.state.token_keys,
        local_issuer=vault.settings.token_issuer,
        local_audience=vault.settings.token_audience,
        issuers={issuer.issuer: JwksClient(issuer, transport=transport)},
        max_token_bytes=8192,
    )
    now = int(vault.clock().timestamp())
    claims = {
        "iss": issuer.issuer,
        "aud": "tvault",
        "iat": now,
        "exp": now + 600,
        "preferred_username": "lena",
        "realm_access": {"roles": ["tvault-lawyer"]},
    }
    token = rfc_jwt.encode({"alg": "RS256", "kid": "kc-1"}, claims, rsa)
    for _ in range(3):
        assert client(app, token).get("/v1/me").status_code == 200
    [first] = entries(vault, ledger.actions.OIDC_FIRST_USE)
    assert first.actor == "lena" and first.details["issuer"] == issuer.issuer
    assert first.details["roles"] == ["lawyer"]
    # Another process (a fresh app) finds it recorded and writes nothing.
    other_app = app_of(vault)
    other_app.state.gate = app.state.gate
    assert client(other_app, token).get("/v1/me").status_code == 200
    assert len(entries(vault, ledger.actions.OIDC_FIRST_USE)) == 1
    # What the principal then does names the issuer as the credential that proved it.
    assert client(app, token).post("/v1/search", json={"q": "Ayacucho"}).status_code == 200
    search = entries(vault, ledger.actions.SEARCH)[-1]
    assert search.actor == "lena"
    assert search.details["credential"] == f"oidc:{first.details['issuer']}"


def test_each_action_names_the_token_that_did_it_as_issued_in_the_ledger(vault: Vault) -> None:
    # Promise 9: two tokens of one account are told apart in what they do.
    app = app_of(vault)
    first, second = (credentials.issue(vault, "lena", ttl_seconds=600) for _ in range(2))
    for issued in (first, second, first):
        assert client(app, issued.token).post("/v1/search", json={"q": "x"}).status_code == 200
    issues = {str(e.details["token"]) for e in entries(vault, ledger.actions.TOKEN_ISSUANCE)}
    searches = entries(vault, ledger.actions.SEARCH)[-3:]
    assert [e.actor for e in searches] == ["lena"] * 3
    named = [str(e.details["credential"]) for e in searches]
    assert named == [f"token:{t.token_id}" for t in (first, second, first)]
    assert {n.removeprefix("token:") for n in named} <= issues


def test_a_keyring_restored_from_before_a_rotation_makes_its_key_current_again(
    vault: Vault,
) -> None:
    copy = vault.settings.keyring_path.read_bytes()
    old = signing_key(vault.keyring)
    done = credentials.rotate_token_key(vault, "admin")
    vault.settings.keyring_path.write_bytes(copy)
    restored = open_vault(vault.settings, PASSPHRASE)
    try:
        with restored.sessions() as session:
            assert current_kid(session) == old.kid != done.kid
        app = app_of(restored)
        assert client(app, token_for(restored, "lena", "lawyer")).get("/v1/me").status_code == 200
    finally:
        restored.close()


def test_no_ledger_call_passes_a_principal_s_bare_subject_as_its_actor() -> None:
    # The credential travels with the principal: a call site handing over `x.subject` alone
    # would write an entry that cannot tell which token acted (promise 9).
    root = Path(vault_package.__file__).parent
    bare = [
        f"{path.relative_to(root)}:{node.lineno}"
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.keyword)
        and node.arg == "actor"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr in {"subject", "signer"}
    ]
    assert bare == []
