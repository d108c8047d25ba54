"""age `ssh-ed25519` recipients that cannot be used are refused, each with its reason (the
interoperability with `ssh-keygen` keys and the stock `age` tool:
tests/integration/test_age_ssh.py)."""

from __future__ import annotations

import base64
import io

import pytest

import keys


def _blob(public: bytes) -> str:
    body = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + public
    return "ssh-ed25519 " + base64.b64encode(body).decode()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7", "only ssh-ed25519"),
        ("ssh-ed25519", "not an OpenSSH Ed25519 public key"),
        ("ssh-ed25519 !!!notbase64", "malformed"),
        ("ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x03abc").decode(), "malformed"),
        (_blob((2).to_bytes(32, "little")), "not on the curve"),  # x^2 is no square for y = 2
        (_blob(b"\xff" * 31 + b"\x7f"), "canonical"),  # y >= p
        (_blob((1).to_bytes(32, "little")), "identity"),  # the neutral point
        (_blob(bytes(32)), "low-order"),  # y = 0: a point of order 4
        ("age1notarecipient", "age X25519 recipient"),
    ],
)
def test_malformed_or_unusable_recipients_are_refused(bad: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        keys.normalize_recipient(bad)
    with pytest.raises(ValueError):
        keys.Sealer(io.BytesIO(), [bad])
