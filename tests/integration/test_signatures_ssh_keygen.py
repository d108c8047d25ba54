"""Depositor signatures against a live `ssh-keygen`: signatures it makes verify here, and it
accepts the vectors this code accepts (the pure tests: tests/unit/keys/test_signatures.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import keys

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sshsig"
STATEMENT = (VECTORS / "statement.json").read_bytes()
KINDS = ["ed25519", "ecdsa", "rsa"]


def _pub(kind: str) -> str:
    return (VECTORS / f"{kind}.pub").read_text()


def _ssh_sign(tmp_path: Path, key_type: list[str], namespace: str) -> tuple[str, str]:
    from tests.services import tool

    keygen = tool("ssh-keygen")
    key = tmp_path / "id"
    subprocess.run([keygen, "-q", *key_type, "-N", "", "-C", "live", "-f", str(key)], check=True)
    message = tmp_path / "statement.json"
    message.write_bytes(STATEMENT)
    subprocess.run(
        [keygen, "-Y", "sign", "-f", str(key), "-n", namespace, str(message)],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "statement.json.sig").read_text(), (tmp_path / "id.pub").read_text()


@pytest.mark.parametrize(
    "key_type", [["-t", "ed25519"], ["-t", "ecdsa", "-b", "256"]], ids=["ed25519", "ecdsa"]
)
def test_live_ssh_keygen_signature_verifies(tmp_path: Path, key_type: list[str]) -> None:
    signature, public = _ssh_sign(tmp_path, key_type, keys.SSHSIG_NAMESPACE)
    keys.verify_signature(STATEMENT, signature, public)
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT.replace(b"legal", b"LEGAL"), signature, public)


def test_live_ssh_keygen_wrong_namespace_is_rejected(tmp_path: Path) -> None:
    signature, public = _ssh_sign(tmp_path, ["-t", "ed25519"], "git")
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, signature, public)


def test_vectors_are_accepted_by_ssh_keygen_itself(tmp_path: Path) -> None:
    # The other direction: the stock verifier agrees with ours on the same vectors.
    from tests.services import tool

    keygen = tool("ssh-keygen")
    for kind in KINDS:
        signers = tmp_path / "allowed_signers"
        signers.write_text(f"therapist {_pub(kind)}")
        ok = subprocess.run(
            [
                keygen,
                "-Y",
                "verify",
                "-f",
                str(signers),
                "-I",
                "therapist",
                "-n",
                keys.SSHSIG_NAMESPACE,
                "-s",
                str(VECTORS / f"{kind}.sig"),
            ],
            input=STATEMENT,
            capture_output=True,
        )
        assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [
            keygen,
            "-Y",
            "verify",
            "-f",
            str(signers),
            "-I",
            "therapist",
            "-n",
            keys.SSHSIG_NAMESPACE,
            "-s",
            str(VECTORS / "ed25519-namespace-file.sig"),
        ],
        input=STATEMENT,
        capture_output=True,
    )
    assert bad.returncode != 0
