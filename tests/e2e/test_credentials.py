"""Credentials cut off on every server process: two `tvault serve` processes on one PostgreSQL,
with revocation, disabling, a re-created account, the maximum lifetime and a token-key rotation
done through one process or offline (issue 16 point 4, DESIGN.md promise 9)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Server, base_env, serve, tvault

pytestmark = pytest.mark.postgres


def status(server: Server, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.url}/v1/me", headers=headers, timeout=30).status_code


def claims(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    loaded: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return loaded


def issue(server: Server, admin: str, name: str) -> str:
    """Return a token for `name` that `server` issued (`POST /v1/users/{name}/tokens`)."""
    headers = {"Authorization": f"Bearer {admin}"}
    response = httpx.post(
        f"{server.url}/v1/users/{name}/tokens", json={}, headers=headers, timeout=30
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def kids(server: Server) -> set[str]:
    keys = httpx.get(f"{server.url}/.well-known/jwks.json", timeout=30).json()["keys"]
    return {key["kid"] for key in keys}


# About 15 CLI runs and two servers: well past the default limit on a loaded machine.
@pytest.mark.timeout(900)
def test_every_process_refuses_a_cut_off_credential_on_its_next_request(
    tmp_path: Path, pg_schema_url: str
) -> None:
    home = tmp_path / "vault"
    env = base_env(
        home,
        TVAULT_DATABASE_URL=pg_schema_url,
        TVAULT_EMBEDDED_WORKER="false",
        TVAULT_SEARCH_HELPER="false",
        TVAULT_AUTH_FAILURE_BURST="1000",
    )
    tvault("init", "--admin", "admin", env=env)
    for name, role in (("lena", "lawyer"), ("tina", "therapist")):
        tvault("users", "add", name, "--role", role, env=env)
    first, second = serve(home, env, "first"), serve(home, env, "second")
    try:
        admin = first.token("admin")  # offline, with the passphrase; the others by the API
        lena, tina = issue(first, admin, "lena"), issue(second, admin, "tina")
        assert {status(s, t) for s in (first, second) for t in (admin, lena, tina)} == {200}

        # Revoked through the first process: the second refuses it on the next request.
        revoke = ("token", "revoke", str(claims(lena)["jti"]), "--url", first.url)
        tvault(*revoke, "--token", admin, env=env)
        assert status(second, lena) == 401 and status(first, lena) == 401

        # Disabled offline, with the passphrase: both refuse; enabling does not revive it.
        tvault("users", "disable", "tina", env=env)
        assert status(first, tina) == 401 and status(second, tina) == 401
        tvault("users", "enable", "tina", env=env)
        assert status(second, tina) == 401
        tina = issue(second, admin, "tina")
        assert status(first, tina) == 200

        # An account deleted and re-created under its name with another role: old tokens stay
        # dead, whatever role the new account has.
        old = issue(first, admin, "lena")
        engine = create_engine(pg_schema_url)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM users WHERE name = 'lena'"))
        engine.dispose()
        tvault("users", "add", "lena", "--role", "custodian", env=env)
        assert status(first, old) == 401 and status(second, old) == 401

        # The maximum lifetime (12 h by default).
        refused = tvault("token", "lena", "--ttl", str(12 * 3600 + 1), env=env, check=False)
        assert refused.returncode == 2
        assert "exceeds the maximum token lifetime of 43200 s" in refused.stderr

        # The signing key rotates while both serve: tokens of the old key live on, tokens of
        # the new one are accepted at once, and the JWKS publishes both.
        before = kids(first)
        tvault("keys", "rotate", "--tokens", env=env)
        fresh = first.token("admin")
        assert claims(fresh)["jti"] and status(second, fresh) == 200
        assert status(first, fresh) == 200 and status(first, tina) == 200
        assert status(second, tina) == 200
        after = kids(second)
        assert len(before) == 1 and before < after and len(after) == 2
    finally:
        first.stop()
        second.stop()
