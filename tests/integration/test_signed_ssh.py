"""Signatures made by a live `ssh-keygen`: a deposit signed with an OpenSSH key is accepted as
is, one signed in another namespace is refused and stores nothing, and `tvault`'s client-side
signing hands OpenSSH keys to `ssh-keygen` (the other signed deposit tests:
tests/unit/vault/test_signed_deposit.py and test_signed_keys.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import keys
from tests.services import tool
from tests.unit.vault.conftest import principal
from tests.unit.vault.signed_support import BODY, deposit, nothing_stored, statement
from vault import signatures
from vault.cases import create_case
from vault.cli import app
from vault.cli.signing import public_key_of, sign_with
from vault.errors import BadField
from vault.parts import Vault
from vault.verify import verify


@pytest.fixture
def case_id(vault: Vault) -> str:
    return create_case(vault, principal(vault, "tina"), "Case of the river").id


def test_an_ssh_keygen_signature_is_accepted_as_is(
    vault: Vault, case_id: str, tmp_path: Path
) -> None:
    ssh_keygen = tool("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id_ed25519.pub").read_text().strip()
    signatures.register_key(vault, principal(vault, "admin"), "tina", public)
    data = statement(vault, case_id, public)
    message = tmp_path / "statement.json"
    message.write_bytes(data)
    subprocess.run(
        [ssh_keygen, "-q", "-Y", "sign", "-f", str(key), "-n", keys.SSHSIG_NAMESPACE, str(message)],
        check=True,
    )
    armored = (tmp_path / "statement.json.sig").read_text()
    result = deposit(vault, case_id, signatures.Presented(data, armored))
    assert result.size == len(BODY)
    report = verify(vault)
    assert report.ok, report.failures


def _ssh_presented(
    vault: Vault, case_id: str, tmp_path: Path, namespace: str
) -> signatures.Presented:
    ssh_keygen = tool("ssh-keygen")
    key = tmp_path / "id_ns"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id_ns.pub").read_text().strip()
    signatures.register_key(vault, principal(vault, "admin"), "tina", public)
    message = tmp_path / "s.json"
    message.write_bytes(statement(vault, case_id, public))
    subprocess.run(
        [ssh_keygen, "-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(message)], check=True
    )
    return signatures.Presented(message.read_bytes(), (tmp_path / "s.json.sig").read_text())


def test_a_wrong_ssh_namespace_is_refused_and_nothing_is_stored(
    vault: Vault, case_id: str, tmp_path: Path
) -> None:
    presented = _ssh_presented(vault, case_id, tmp_path, "git")
    with pytest.raises(BadField) as caught:
        deposit(vault, case_id, presented)
    assert caught.value.field == "signature"
    assert nothing_stored(vault)


def test_client_side_signing_with_raw_and_openssh_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    raw = tmp_path / "me.key"
    made = runner.invoke(app, ["keys", "generate", str(raw)])
    assert made.exit_code == 0, made.output
    assert raw.stat().st_mode & 0o777 == 0o600
    message = b'{"statement":1}'
    public = public_key_of(raw)
    keys.verify_signature(message, sign_with(raw, message), public)
    assert keys.key_id(public) in made.output

    ssh_keygen = tool("ssh-keygen")
    ssh = tmp_path / "id_ed25519"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(ssh)], check=True)
    (tmp_path / "id_ed25519.pub").unlink()  # derived with ssh-keygen -y instead
    ssh_public = public_key_of(ssh)
    armored = sign_with(ssh, message)
    assert armored.startswith("-----BEGIN SSH SIGNATURE-----")
    keys.verify_signature(message, armored, ssh_public)
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(message + b" ", armored, ssh_public)
