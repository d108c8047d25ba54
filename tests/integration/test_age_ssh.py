"""age `ssh-ed25519` recipients and OpenSSH identities, both ways with the stock `age` tool.

The shared age vectors (../shared/vectors/cctv-age, C2SP CCTV) hold no ssh-ed25519 file, so
the stock tool and keys made by `ssh-keygen` are the reference here.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

import keys
from keys import age_ssh
from tests.services import tool


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """An Ed25519 key made by ssh-keygen: (private key path, its text, the public line)."""
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(
        [tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "commission", "-f", str(path)],
        check=True,
    )
    return path, path.read_text(), path.with_suffix(".pub").read_text().strip()


def _seal(data: bytes, recipients: list[str]) -> bytes:
    out = io.BytesIO()
    keys.seal(io.BytesIO(data), out, recipients)
    return out.getvalue()


def _open(sealed: bytes, identity: str) -> bytes:
    out = io.BytesIO()
    keys.unseal(io.BytesIO(sealed), out, identity)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 150_000])
def test_age_tool_opens_what_keys_seals_to_an_ssh_key(
    size: int, ssh_key: tuple[Path, str, str]
) -> None:
    path, _, public = ssh_key
    data = os.urandom(size)
    sealed = _seal(data, [public])
    assert b"\n-> ssh-ed25519 " in sealed
    opened = subprocess.run(
        [tool("age"), "-d", "-i", str(path)], input=sealed, capture_output=True, check=True
    )
    assert opened.stdout == data


def test_keys_opens_what_age_tool_seals_to_an_ssh_key(ssh_key: tuple[Path, str, str]) -> None:
    path, private, _ = ssh_key
    data = os.urandom(100_000)
    sealed = subprocess.run(
        [tool("age"), "-R", str(path.with_suffix(".pub"))],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    assert _open(sealed, private) == data


def test_mixed_recipients_each_open(ssh_key: tuple[Path, str, str]) -> None:
    _, private, public = ssh_key
    identity, recipient = keys.generate_identity()
    sealed = _seal(b"para la comision", [recipient, public])
    assert _open(sealed, identity) == b"para la comision"
    assert _open(sealed, private) == b"para la comision"


def test_another_ssh_key_does_not_open(ssh_key: tuple[Path, str, str], tmp_path: Path) -> None:
    _, _, public = ssh_key
    other = tmp_path / "other"
    subprocess.run(
        [tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True
    )
    with pytest.raises(keys.UnsealError):
        _open(_seal(b"x", [public]), other.read_text())
    identity, _ = keys.generate_identity()
    with pytest.raises(keys.UnsealError):
        _open(_seal(b"x", [public]), identity)


def test_recipient_of_and_normalize_give_the_key_without_comment(
    ssh_key: tuple[Path, str, str],
) -> None:
    _, private, public = ssh_key
    bare = " ".join(public.split()[:2])
    assert keys.recipient_of(private) == bare
    assert keys.normalize_recipient(public) == bare
    _, recipient = keys.generate_identity()
    assert keys.normalize_recipient(f"  {recipient}\n") == recipient


def test_passphrase_protected_key_is_refused_with_its_remedy(tmp_path: Path) -> None:
    path = tmp_path / "locked"
    subprocess.run(
        [tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "secret words", "-f", str(path)],
        check=True,
    )
    with pytest.raises(ValueError, match="passphrase"):
        age_ssh.parse_identity(path.read_text())
    sealed = _seal(b"x", [path.with_suffix(".pub").read_text()])
    with pytest.raises(keys.UnsealError, match="passphrase"):
        _open(sealed, path.read_text())


def test_rsa_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rsa"
    subprocess.run(
        [tool("ssh-keygen"), "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(path)],
        check=True,
    )
    with pytest.raises(ValueError, match="ssh-rsa, not ssh-ed25519"):
        age_ssh.parse_identity(path.read_text())


def test_altered_stanza_is_refused(ssh_key: tuple[Path, str, str]) -> None:
    _, private, public = ssh_key
    sealed = bytearray(_seal(b"evidence", [public]))
    start = sealed.index(b"-> ssh-ed25519 ") + len(b"-> ssh-ed25519 ")
    sealed[start] ^= 0x01  # the key tag: the stanza no longer names this key
    with pytest.raises(keys.UnsealError):
        _open(bytes(sealed), private)
