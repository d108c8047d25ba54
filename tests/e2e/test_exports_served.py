"""An export to a truth commission through a served vault (issue 18): recipients, request,
approval by another custodian, the builder beside the API, HTTP Range (206, 416), a download
that resumes with `tvault export download`, `tvault verify-export` on it, and a revocation the
download refuses with an RFC 9457 problem naming the reason."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import keys
from tests.e2e.conftest import Server, provision, serve, tvault
from vault.headers import to_headers


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """One served vault and a token per account. The vault is made and the tokens minted in this
    process with the unit tests' fast key derivation: `tvault init`, `users add` and `token`
    as subprocesses each derived the passphrase's key again (minutes under load), and they
    are tested elsewhere; what this test runs as a subprocess is the export CLI."""
    from vault import credentials
    from vault.accounts import add_user

    home = tmp_path_factory.mktemp("exports") / "vault"
    env, vault = provision(home, TVAULT_EXPORT_POLL_SECONDS="0.2")
    try:
        with vault.sessions.begin() as session:
            add_user(session, "cleo", "custodian", vault.clock())
            add_user(session, "truth", "commission", vault.clock())
        tokens = {
            name: credentials.issue(vault, name, ttl_seconds=3600).token
            for name in ("tina", "admin", "cleo", "truth")
        }
    finally:
        vault.close()
    running = serve(home, env)
    try:
        yield running, tokens
    finally:
        running.stop()


def ready(client: httpx.Client, export_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        view: dict[str, Any] = client.get(f"/v1/exports/{export_id}").json()
        if view["state"] not in ("queued", "building") or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


@pytest.mark.timeout(600)
def test_export_requested_approved_built_downloaded_resumed_verified_then_revoked(
    served: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = served

    def client(name: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=60)

    identity, recipient = keys.generate_identity()
    identity_file = tmp_path / "commission.key"
    identity_file.write_text(identity + "\n")
    with (
        client("tina") as tina,
        client("admin") as admin,
        client("cleo") as cleo,
        client("truth") as truth,
    ):
        case = tina.post("/v1/cases", json={"name": "Case of the river"}).json()["id"]
        items = []
        for body, consent in ((b"testimony " * 5000, "truth_commission"), (b"x", "therapy")):
            meta = {"kind": "testimony", "title": "T", "consent": consent}
            made = tina.post(f"/v1/cases/{case}/items", headers=to_headers(meta), content=body)
            assert made.status_code == 201, made.text
            items.append(made.json()["id"])
        grant = {"user": "truth", "role": "commission"}
        assert admin.post(f"/v1/cases/{case}/grants", json=grant).status_code == 204
        bad = admin.post("/v1/users/truth/recipients", json={"key": "age1notakey"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        added = admin.post("/v1/users/truth/recipients", json={"key": recipient})
        assert added.status_code == 201, added.text

        wanted = {"case_id": case, "purpose": "Mandato", "legal_basis": "Ley 1448"}
        asked = truth.post("/v1/exports", json=wanted)
        assert asked.status_code == 201, asked.text
        export_id = asked.json()["id"]
        preview = truth.get(f"/v1/exports/{export_id}").json()["preview"]
        assert (preview["items"], preview["not_consented"]) == (1, 1)
        assert truth.get(f"/v1/exports/{export_id}/download").status_code == 409  # not built
        assert truth.post(f"/v1/exports/{export_id}/approve").status_code == 403
        approved = cleo.post(f"/v1/exports/{export_id}/approve")
        assert approved.status_code == 200
        assert approved.json()["state"] in ("queued", "building", "ready")  # woken at once
        view = ready(truth, export_id)
        assert view["state"] == "ready", view
        size, digest = view["size"], view["sha256"]

        head = truth.get(f"/v1/exports/{export_id}/download", headers={"Range": "bytes=0-99"})
        assert head.status_code == 206 and len(head.content) == 100
        assert head.headers["content-range"] == f"bytes 0-99/{size}"
        past = truth.get(f"/v1/exports/{export_id}/download", headers={"Range": f"bytes={size}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
        assert tina.get(f"/v1/exports/{export_id}/download").status_code == 404

    # The CLI resumes from a partial file left by a broken download.
    target = tmp_path / "export.tar.age"
    (tmp_path / "export.tar.age.part").write_bytes(head.content)
    env = {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": tokens["truth"]}
    got = tvault("export", "download", export_id, "-o", str(target), env=env)
    assert digest in got.stdout
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    checked = tvault("verify-export", str(target), "--identity", str(identity_file), env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    with client("tina") as tina, client("truth") as truth:
        change = {"withdraw": ["truth_commission"], "basis": "depositor_confirmation"}
        assert tina.post(f"/v1/items/{items[0]}/consent", json=change).status_code == 201
        refused = truth.get(f"/v1/exports/{export_id}/download")
        assert refused.status_code == 410
        problem = refused.json()
        assert problem["type"] == "urn:tvault:problem:gone"
        assert f"consent for item {items[0]}" in problem["detail"]
        assert truth.get(f"/v1/exports/{export_id}").json()["state"] == "revoked"
    # Purpose and legal basis are sealed: the server's log never carries them.
    log = server.log.read_text(errors="replace")
    assert "Mandato" not in log and "Ley 1448" not in log
