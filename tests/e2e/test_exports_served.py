"""An export to a truth commission through a served vault (issue 18): recipients, request,
approval by another custodian, the builder beside the API, HTTP Range (206, 416), a download
that resumes with `tvault export download`, `tvault verify-export` on it, the same file checked
with stock tools only (the SSH-signed deposit with `ssh-keygen -Y verify`), the progress bar on
a terminal, and a revocation the download refuses with an RFC 9457 problem naming the reason."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import keys
from tests.e2e.conftest import TVAULT, Server, provision, serve, tvault
from tests.services import tool
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


def stock_tools_check(
    export: Path, identity: Path, log_key: str, into: Path, signed_item: str
) -> None:
    """What the README in the bag tells a commission to run, with stock tools only: `age -d`,
    `tar -x`, the Library of Congress `bagit.py --validate`, `sha256sum -c`, `sha512sum -c`,
    the bag's own proof script with the log key, and `ssh-keygen -Y verify` on the depositor's
    SSHSIG statement of `signed_item`, with the README's own command line."""
    opened = subprocess.run(
        [tool("age"), "-d", "-i", str(identity), str(export)], capture_output=True, check=True
    )
    into.mkdir()
    subprocess.run(["tar", "-x", "-f", "-", "-C", str(into)], input=opened.stdout, check=True)
    [bag] = list(into.iterdir())
    bagit_tool = os.path.join(os.path.dirname(sys.executable), "bagit.py")
    for argv, where in (
        ([bagit_tool, "--validate", str(bag)], None),
        (["sha256sum", "-c", "manifest-sha256.txt"], bag),
        (["sha512sum", "-c", "manifest-sha512.txt"], bag),
        ([sys.executable, str(bag / "verify_custody.py"), str(bag), "--log-key", log_key], None),
    ):
        done = subprocess.run(argv, cwd=where, capture_output=True, text=True, check=False)
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    assert done.stdout.rstrip().endswith("OK: the custody record holds"), done.stdout
    check_signature_as_the_readme_says(bag, signed_item)


def check_signature_as_the_readme_says(bag: Path, item_id: str) -> None:
    """Run the README's `ssh-keygen -Y verify` line, as written, in the item's folder; then the
    same line on an altered copy of the statement, which ssh-keygen must refuse."""
    readme = (bag / "README.md").read_text("utf-8")
    # One line in Spanish, one in English.
    commands = re.findall(r"`(echo \"[^`]*ssh-keygen -Y verify [^`]*)`", readme)
    assert len(commands) == 2, commands
    item = bag / "data" / "items" / item_id
    statement = (item / "statement.json").read_bytes()
    [original] = list((item / "original").iterdir())
    # The README: the statement's `sha256` must be the original file's.
    assert json.loads(statement)["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    path = f"{os.path.dirname(tool('ssh-keygen'))}:{os.environ.get('PATH', '')}"
    altered = bag.parent.parent / "altered"  # beside the unpacked bag, not in it
    altered.mkdir()
    for name in ("signer.pub", "statement.sig"):
        (altered / name).write_bytes((item / name).read_bytes())
    changed = statement.replace(b'"size":', b'"size":1')
    assert changed != statement
    (altered / "statement.json").write_bytes(changed)
    for command in commands:
        good, bad = (
            subprocess.run(
                ["sh", "-c", command],
                cwd=where,
                env={**os.environ, "PATH": path},
                capture_output=True,
                text=True,
                check=False,
            )
            for where in (item, altered)
        )
        assert good.returncode == 0 and "Good" in good.stdout + good.stderr, (command, good)
        assert bad.returncode != 0 and "Good" not in bad.stdout + bad.stderr, (command, bad)


def download_on_a_terminal(export_id: str, target: Path, env: dict[str, str]) -> tuple[str, Path]:
    """Run `tvault export download` with stderr on a pseudo-terminal; return what it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*TVAULT, "export", "download", export_id, "-o", str(target)],
        env={**env, "TERM": "xterm", "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, (out, shown)
    return shown.decode(errors="replace"), target


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
        # The testimony that goes in is signed by its depositor with an SSH key (SSHSIG).
        key = tmp_path / "id_ed25519"
        keygen = tool("ssh-keygen")
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = (tmp_path / "id_ed25519.pub").read_text().strip()
        registered = admin.post("/v1/users/tina/keys", json={"public_key": public})
        assert registered.status_code == 201, registered.text
        testimony = b"testimony " * 5000
        statement = keys.canonical_json(
            {
                "origin": tina.get("/v1/signatures/origin").json()["origin"], "case": case,
                "sha256": hashlib.sha256(testimony).hexdigest(), "size": len(testimony),
                "filename": "testimonio.txt", "kind": "testimony",
                "consent": ["truth_commission"], "key_id": keys.key_id(public),
                "signed_at": "2026-11-25T12:00:00Z",
            }
        )  # fmt: skip
        (tmp_path / "statement.json").write_bytes(statement)
        subprocess.run(
            [keygen, "-q", "-Y", "sign", "-f", str(key), "-n", "testimony-vault",
             str(tmp_path / "statement.json")],
            check=True,
        )  # fmt: skip
        signed = {
            "Tvault-Statement": base64.b64encode(statement).decode(),
            "Tvault-Signature": base64.b64encode(
                (tmp_path / "statement.json.sig").read_bytes()
            ).decode(),
        }
        items = []
        for body, consent, extra in (
            (testimony, "truth_commission", signed),
            (b"x", "therapy", {}),
        ):
            meta = {"kind": "testimony", "title": "T", "consent": consent}
            if extra:
                meta["filename"] = "testimonio.txt"
            made = tina.post(
                f"/v1/cases/{case}/items", headers={**to_headers(meta), **extra}, content=body
            )
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
    with client("admin") as admin, client("truth") as truth:
        log_key = admin.get("/v1/ledger/key").json()["verifier_key"]
        downloads = truth.get(f"/v1/exports/{export_id}").json()["downloads"]
    stock_tools_check(target, identity_file, log_key, tmp_path / "unpacked", items[0])

    # On a terminal, the download shows a progress bar on stderr (stdout keeps the result).
    shown, again = download_on_a_terminal(export_id, tmp_path / "again.tar.age", env)
    assert again.read_bytes() == target.read_bytes()
    assert "export" in shown and re.search(r"\d+(\.\d+)?/\d+(\.\d+)? kB", shown), shown
    with client("truth") as truth:  # each download is one more ledger entry
        assert truth.get(f"/v1/exports/{export_id}").json()["downloads"] == downloads + 1

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
