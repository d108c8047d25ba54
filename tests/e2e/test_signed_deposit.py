"""Signed deposits end to end: keys registered with `tvault users key-add`, `tvault deposit
--sign-key` with a raw Ed25519 key and with an OpenSSH key (ssh-keygen), a refused statement over
HTTP that leaves nothing behind, a co-signature, and `tvault verify` naming a forged signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import keys
from tests.e2e.conftest import Server, tvault
from tests.services import tool
from vault.headers import to_headers

BODY = b"I saw them take my brother from the market.\n" * 2000


def _stored(server: Server) -> list[Path]:
    root = server.home / "objects"
    return [p for p in root.rglob("*") if p.is_file() and p.name.startswith(("items+", "w-"))]


def test_signed_deposits_cosignature_and_verify(server: Server, tmp_path: Path) -> None:
    env = server.env
    tvault("users", "add", "theo", "--role", "therapist", env=env)
    admin = {**env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("admin")}
    tina = {**env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("tina")}
    theo = {**env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("theo")}
    case = tvault("cases", "create", "Case of the market", env=tina).stdout.strip()
    tvault("cases", "grant", case, "theo", "--role", "therapist", env=admin)
    source = tmp_path / "market.txt"
    source.write_bytes(BODY)
    before = _stored(server)

    raw = tmp_path / "tina.key"
    tvault("keys", "generate", str(raw), env=env)
    ssh_keygen = tool("ssh-keygen")
    ssh = tmp_path / "id_ed25519"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(ssh)], check=True)
    unregistered = tmp_path / "stranger.key"
    tvault("keys", "generate", str(unregistered), env=env)

    # A key that is not registered (yet) is refused with a clear 4xx, and nothing is stored.
    deposit = ["deposit", str(source), "--case", case, "--consent", "therapy,legal", "--json"]
    refused = tvault(*deposit, "--sign-key", str(raw), env=tina, check=False)
    assert (
        refused.returncode == 1 and "422" in refused.stderr and "not registered" in refused.stderr
    )
    assert _stored(server) == before

    # Only a custodian registers keys.
    assert tvault("users", "key-add", "tina", f"{raw}.pub", env=tina, check=False).returncode == 1
    added = tvault("users", "key-add", "tina", f"{raw}.pub", env=admin).stdout
    assert keys.key_id((tmp_path / "tina.key.pub").read_text()) in added
    tvault("users", "key-add", "tina", f"{ssh}.pub", env=admin)
    assert len(json.loads(tvault("users", "keys", "tina", "--json", env=admin).stdout)) == 2

    items = []
    for key in (raw, ssh):
        done = json.loads(tvault(*deposit, "--sign-key", str(key), env=tina).stdout)
        assert done["sha256"] == hashlib.sha256(BODY).hexdigest()
        items.append(done["id"])
    assert tvault(*deposit, "--sign-key", str(unregistered), env=tina, check=False).returncode == 1

    # Over HTTP: a good signature over a statement whose digest is not the body's -> 422.
    with server.client("tina") as client:
        origin = client.get("/v1/signatures/origin").json()["origin"]
        public = (tmp_path / "tina.key.pub").read_text().strip()
        statement = keys.canonical_json(
            {
                "origin": origin, "case": case, "sha256": "0" * 64, "size": len(BODY),
                "filename": "market.txt", "kind": "testimony", "consent": ["legal", "therapy"],
                "key_id": keys.key_id(public), "signed_at": "2026-11-25T12:00:00Z",
            }
        )  # fmt: skip
        signature = keys.sign(statement, raw.read_text().strip())
        stored = _stored(server)
        response = client.post(
            f"/v1/cases/{case}/items",
            content=BODY,
            headers={
                **to_headers({"kind": "testimony", "title": "T", "consent": "therapy,legal",
                              "filename": "market.txt"}),
                "Content-Type": "application/octet-stream",
                "Tvault-Statement": base64.b64encode(statement).decode(),
                "Tvault-Signature": base64.b64encode(signature.encode()).decode(),
            },
        )  # fmt: skip
        assert response.status_code == 422 and "sha256" in response.json()["detail"]
        assert _stored(server) == stored

    # theo co-signs with his own registered key: one more ledger entry.
    theo_key = tmp_path / "theo.key"
    tvault("keys", "generate", str(theo_key), env=env)
    tvault("users", "key-add", "theo", f"{theo_key}.pub", env=admin)
    cosigned = json.loads(
        tvault("cosign", items[0], "--sign-key", str(theo_key), "--json", env=theo).stdout
    )
    assert (cosigned["number"], cosigned["role"], cosigned["signer"]) == (2, "cosigner", "theo")
    with server.client("tina") as client:
        kept = client.get(f"/v1/items/{items[0]}/signatures").json()
    assert [(s["number"], s["signer"]) for s in kept] == [(1, "tina"), (2, "theo")]

    report = json.loads(tvault("verify", "--json", env=env).stdout)
    assert report["ok"] and report["signatures"] == 3

    # A forged signature (the row edited in the database) is named by verify, fast or full.
    forger, _ = keys.generate_signing_key()
    with sqlite3.connect(server.home / "vault.db") as db:
        db.execute(
            "UPDATE item_signatures SET signature = ? WHERE item_id = ? AND number = 1",
            (keys.sign(b"another statement", forger), items[1]),
        )
    for mode in ([], ["--fast"]):
        broken = tvault("verify", *mode, env=env, check=False)
        assert broken.returncode == 1
        assert f"{items[1]}: signature invalid (signature 1" in broken.stdout
