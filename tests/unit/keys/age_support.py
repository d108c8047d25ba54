"""Helpers of the age tests, in tests/unit/keys and in the tests against the stock `age` tool
(tests/integration/test_age_tool.py): sealing to bytes, opening both ways, a key file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import keys

CHUNK = keys.CHUNK_SIZE


def seal_bytes(data: bytes, recipients: list[str]) -> bytes:
    """Seal `data` to `recipients` in memory."""
    out = io.BytesIO()
    assert keys.seal(io.BytesIO(data), out, recipients) == len(data)
    return out.getvalue()


def unseal_checked(sealed: bytes, identity: str) -> bytes:
    """Open `sealed` both ways, streamed and whole: they must agree on the plaintext, or both
    raise `UnsealError`."""
    out = io.BytesIO()
    try:
        assert keys.unseal(io.BytesIO(sealed), out, identity) == len(out.getvalue())
    except keys.UnsealError:
        with pytest.raises(keys.UnsealError):
            keys.unseal_bytes(sealed, identity)
        raise
    assert keys.unseal_bytes(sealed, identity) == out.getvalue()
    return out.getvalue()


def payload_start(sealed: bytes) -> int:
    """Offset of the first STREAM chunk (after the header and the 16-byte nonce)."""
    return sealed.index(b"\n---") + len(b"\n--- ") + 43 + 1 + 16


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A new age identity in a file: (its path, the identity, its recipient)."""
    identity, recipient = keys.generate_identity()
    path = tmp_path_factory.mktemp("age") / "key.txt"
    path.write_text(identity + "\n")
    return path, identity, recipient
