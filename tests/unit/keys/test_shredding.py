"""Crypto-shredding: once an item's wrapped identity is gone, its objects are noise forever."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import keys
from keys import _bech32

FAST = keys.KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


def _seal(data: bytes, recipient: str) -> bytes:
    out = io.BytesIO()
    keys.seal(io.BytesIO(data), out, [recipient])
    return out.getvalue()


def _opens(sealed: bytes, identity: str) -> bool:
    try:
        keys.unseal(io.BytesIO(sealed), io.BytesIO(), identity)
    except keys.UnsealError:
        return False
    return True


def test_destroying_the_wrapped_identity_makes_the_object_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = keys.Keyring.create(path, "custodian", kdf=FAST)
    ring.set_secret("log-signing", keys.LogSigner.generate().seed())

    # Two items, as the vault stores them: the object sealed to a fresh identity, the identity
    # kept only wrapped (in the DB), never in the keyring or next to the object.
    db: dict[str, bytes] = {}
    objects: dict[str, bytes] = {}
    for item in ("kept", "shredded"):
        identity, recipient = keys.generate_identity()
        objects[item] = _seal(b"testimony of " + item.encode() + os.urandom(1000), recipient)
        db[item] = ring.wrap(identity)
        del identity
    assert _opens(objects["shredded"], ring.unwrap(db["shredded"]))

    del db["shredded"]  # crypto-shredding: the one copy of the wrapped identity goes

    reopened = keys.Keyring.open(path, "custodian")
    content = path.read_bytes()
    # Nothing that remains holds the identity: every secret the vault keeps, every master key
    # version, the recovery key and the other item's identity all fail to open the object.
    from keys.keyring import _File

    inner = _File.read(path).content(reopened.recovery_key())
    candidates = [*inner.masters.values(), *inner.secrets.values(), reopened.recovery_key()]
    for scalar in candidates:
        if len(scalar) == 32:
            as_identity = _bech32.encode("age-secret-key-", scalar).upper()
            assert not _opens(objects["shredded"], as_identity)
    assert not _opens(objects["shredded"], reopened.unwrap(db["kept"]))
    assert b"AGE-SECRET-KEY" not in content
    assert _opens(objects["kept"], reopened.unwrap(db["kept"]))


def test_a_stray_copy_of_a_wrapped_identity_dies_with_its_master_version(tmp_path: Path) -> None:
    # A database backup may still hold the wrapped identity. Rotating, re-wrapping the items
    # that remain and retiring the old version makes such copies useless too.
    ring = keys.Keyring.create(tmp_path / "keyring.json", "custodian", kdf=FAST)
    identity, recipient = keys.generate_identity()
    sealed = _seal(b"testimony", recipient)
    backup_copy = ring.wrap(identity)
    other = ring.wrap(keys.generate_identity()[0])

    ring.rotate()
    other = ring.rewrap(other)
    ring.retire(1)
    with pytest.raises(keys.KeyringError):
        ring.unwrap(backup_copy)
    ring.unwrap(other)
    assert _opens(sealed, identity)  # only the (discarded) plaintext identity would open it
