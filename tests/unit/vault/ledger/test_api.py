"""The ledger's API routes and `tvault ledger` commands, on a real vault (SQLite, PostgreSQL)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

import keys
from tests import ledger_verifier as outsider
from tests.unit.vault.api_support import TestClient
from tests.unit.vault.tokens import token_for
from vault import ledger
from vault.accounts import add_user
from vault.api import ledger_routes
from vault.cli import common
from vault.cli import ledger as ledger_cli
from vault.compose import app_of
from vault.ledger import actions
from vault.parts import LOG_SIGNING, Vault

URL = "http://vault.test"


@pytest.fixture
def app(vault: Vault) -> FastAPI:
    with vault.sessions.begin() as session:
        add_user(session, "audrey", "auditor", vault.clock())
        for n in range(5):
            ledger.append(session, actor="tina", action=actions.DECRYPTION, details={"n": n})
    application = app_of(vault)
    if not any(getattr(r, "path", "").startswith("/v1/ledger") for r in application.routes):
        application.include_router(ledger_routes.router)
    return application


@pytest.fixture
def auditor(app: FastAPI, vault: Vault) -> Iterator[TestClient]:
    headers = {"Authorization": f"Bearer {token_for(vault, 'audrey', 'auditor')}"}
    with TestClient(app, base_url=URL, headers=headers) as client:
        yield client


def test_key_is_the_keyrings_log_key(auditor: TestClient, vault: Vault) -> None:
    body = auditor.get("/v1/ledger/key").json()
    public = keys.LogSigner.from_bytes(vault.keyring.secret(LOG_SIGNING)).public_key_bytes()
    name, _key_id, key = outsider.parse_vkey(body["verifier_key"])
    assert (name, key) == (body["origin"], public)
    assert body["origin"] == ledger.default_origin(public)


def test_checkpoints_and_proofs_verify_for_an_outsider(auditor: TestClient, vault: Vault) -> None:
    vkey = auditor.get("/v1/ledger/key").json()["verifier_key"]
    missing = auditor.get("/v1/ledger/checkpoint")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    first = auditor.post("/v1/ledger/checkpoints")
    assert first.status_code == 201
    size = first.json()["size"]
    assert size >= 5
    origin, signed_size, root = outsider.open_checkpoint(
        first.json()["note"], vkey, keys.verify_ed25519
    )
    assert (origin, signed_size) == (vkey.split("+")[0], size)
    assert first.json()["root"] == base64.b64encode(root).decode()
    with vault.store.open(ledger.checkpoints.object_name(size)) as stored:
        assert stored.read().decode() == first.json()["note"]
    assert auditor.get("/v1/ledger/checkpoint", params={"size": size}).json() == first.json()
    with vault.sessions.begin() as session:
        ledger.append(session, actor="tina", action=actions.SEARCH, details={"hits": 0})
    second = auditor.post("/v1/ledger/checkpoints").json()
    assert second["size"] == size + 1
    assert auditor.get("/v1/ledger/checkpoint").json() == second
    for seq in range(size + 1):
        proof = auditor.get("/v1/ledger/proof/inclusion", params={"seq": seq}).json()
        assert outsider.check_inclusion(proof, vkey, keys.verify_ed25519)["seq"] == seq
    consistency = auditor.get("/v1/ledger/proof/consistency", params={"old": size}).json()
    outsider.check_consistency(consistency, vkey, keys.verify_ed25519)
    beyond = auditor.get("/v1/ledger/proof/inclusion", params={"seq": size + 5})
    assert beyond.status_code == 404
    assert auditor.get("/v1/ledger/proof/consistency", params={"old": 3}).status_code == 404
    entries = auditor.get("/v1/ledger/entries", params={"start": 1, "limit": 2}).json()
    assert [e["seq"] for e in entries] == [1, 2]
    assert auditor.get("/v1/ledger/entries", params={"limit": 5000}).status_code == 422


def test_others_are_refused_and_the_refusal_is_recorded(app: FastAPI, vault: Vault) -> None:
    with TestClient(app, base_url=URL) as anonymous:
        assert anonymous.get("/v1/ledger/key").status_code == 401
    headers = {"Authorization": f"Bearer {token_for(vault, 'tina', 'therapist')}"}
    with TestClient(app, base_url=URL, headers=headers) as tina:
        # Hashes only: every account may fetch what outsiders verify the log with.
        assert tina.get("/v1/ledger/key").status_code == 200
        assert tina.get("/v1/ledger/checkpoint").status_code in (200, 404)
        for method, path in [
            ("POST", "/v1/ledger/checkpoints"),
            ("GET", "/v1/ledger/entries"),
        ]:
            assert tina.request(method, path).status_code == 403, path
    with vault.sessions() as session:
        denied = [e for e in ledger.entries(session) if e.action == actions.ACCESS_DENIED]
    assert [(e.actor, e.details["attempted"]) for e in denied] == [
        ("anonymous", "authenticate"),  # the request without a token
        ("tina", "ledger.verify"),
        ("tina", "ledger.read"),
    ]


@pytest.fixture
def cli(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    def bound(url: str, token: str) -> httpx.Client:
        return TestClient(app, base_url=url, headers={"Authorization": f"Bearer {token}"})

    monkeypatch.setattr(common, "connect", bound)
    return CliRunner()


def run(cli: CliRunner, vault: Vault, *args: str, role: str = "auditor") -> Any:
    name = "audrey" if role == "auditor" else "tina"
    env = {"TVAULT_URL": URL, "TVAULT_TOKEN": token_for(vault, name, role)}
    return cli.invoke(ledger_cli.app, list(args), env=env)


def test_cli_prints_and_verifies(cli: CliRunner, vault: Vault) -> None:
    vkey = run(cli, vault, "key").stdout.strip()
    outsider.parse_vkey(vkey)
    created = run(cli, vault, "checkpoint", "--new")
    assert created.exit_code == 0, created.output
    assert created.stdout.splitlines()[0] == vkey.split("+")[0]
    shown = run(cli, vault, "checkpoint", "--json")
    assert json.loads(shown.stdout)["note"] == created.stdout
    proof = run(cli, vault, "proof", "2", "--key", vkey)
    assert proof.exit_code == 0, proof.output
    assert "entry 2 is included" in proof.stdout
    assert json.loads(proof.stdout.splitlines()[-1])["seq"] == 2
    with vault.sessions.begin() as session:
        ledger.append(session, actor="tina", action=actions.EXPORT)
    size = json.loads(shown.stdout)["size"]
    run(cli, vault, "checkpoint", "--new")
    consistent = run(cli, vault, "proof", "--old", str(size))
    assert consistent.exit_code == 0, consistent.output
    assert f"extends checkpoint {size}" in consistent.stdout


def test_cli_failures_and_usage_errors(cli: CliRunner, vault: Vault) -> None:
    run(cli, vault, "checkpoint", "--new")
    stranger = ledger.verifier_key(
        run(cli, vault, "key").stdout.strip().split("+")[0],
        keys.LogSigner.generate().public_key_bytes(),
    )
    wrong_key = run(cli, vault, "proof", "1", "--key", stranger)
    assert wrong_key.exit_code == 1
    assert "does NOT verify" in wrong_key.output
    assert run(cli, vault, "proof", "999").exit_code == 1
    assert run(cli, vault, "key", role="therapist").exit_code == 0  # ledger.proof: everyone
    # A therapist may verify that entry 1 is included, but not read it (issue 16).
    withheld = run(cli, vault, "proof", "1", "--json", role="therapist")
    assert withheld.exit_code == 0, withheld.output
    assert json.loads(withheld.stdout)["entry"] is None
    summary = run(cli, vault, "proof", "1", role="therapist")
    assert "entry 1 is included" in summary.stdout and "withheld" in summary.stdout
    assert '"actor"' not in summary.stdout
    assert run(cli, vault, "checkpoint", "--new", role="therapist").exit_code == 1
    assert run(cli, vault, "proof").exit_code == 2
    assert run(cli, vault, "proof", "1", "--old", "1").exit_code == 2
    assert run(cli, vault, "checkpoint", "--new", "--size", "3").exit_code == 2
    no_token = cli.invoke(ledger_cli.app, ["key"], env={"TVAULT_URL": URL, "TVAULT_TOKEN": ""})
    assert no_token.exit_code == 2
