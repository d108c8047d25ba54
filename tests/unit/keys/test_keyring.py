"""The keyring file: passphrase, versions, wrapping, rotation, secrets, atomic writes."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

import keys

# Cheaper Argon2id than the default, so the suite stays quick; one test uses the defaults.
FAST = keys.KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "keyring.json"


@pytest.fixture
def ring(ring_path: Path) -> keys.Keyring:
    return keys.Keyring.create(ring_path, "correct horse", kdf=FAST)


def test_default_parameters_are_recorded_in_the_file(ring_path: Path) -> None:
    keys.Keyring.create(ring_path, "pass phrase")
    kdf = json.loads(ring_path.read_text())["kdf"]
    assert kdf["algorithm"] == "argon2id"
    assert (kdf["time_cost"], kdf["memory_cost_kib"], kdf["parallelism"]) == (3, 65536, 4)
    assert keys.Keyring.open(ring_path, "pass phrase").current_version == 1
    assert oct(ring_path.stat().st_mode & 0o777) == "0o600"


def test_file_holds_no_key_material_in_the_clear(ring: keys.Keyring, ring_path: Path) -> None:
    ring.set_secret("log-signing", b"S" * 32)
    text = ring_path.read_text()
    assert "SSSS" not in text and "log-signing" not in text


def test_create_refuses_to_overwrite(ring: keys.Keyring, ring_path: Path) -> None:
    before = ring_path.read_bytes()
    with pytest.raises(keys.KeyringError, match="refusing to overwrite"):
        keys.Keyring.create(ring_path, "another", kdf=FAST)
    assert ring_path.read_bytes() == before


def test_empty_passphrase_is_refused(ring_path: Path) -> None:
    with pytest.raises(keys.KeyringError):
        keys.Keyring.create(ring_path, "", kdf=FAST)
    assert not ring_path.exists()


def test_wrong_passphrase_is_told_apart_from_corruption(
    ring: keys.Keyring, ring_path: Path
) -> None:
    before = ring_path.read_bytes()
    with pytest.raises(keys.KeyringError, match="wrong passphrase"):
        keys.Keyring.open(ring_path, "incorrect horse")
    assert ring_path.read_bytes() == before

    damaged = bytearray(before)
    damaged[before.index(b'"ciphertext": "') + 20] ^= 0x01
    ring_path.write_bytes(bytes(damaged))
    with pytest.raises(keys.KeyringError, match="corrupted"):
        keys.Keyring.open(ring_path, "correct horse")
    assert ring_path.read_bytes() == bytes(damaged)


@pytest.mark.parametrize("content", [b"", b"{}", b"not json", b'{"format": "x"}', b"\xff\xfe"])
def test_garbage_file_is_a_clear_error(ring_path: Path, content: bytes) -> None:
    ring_path.write_bytes(content)
    with pytest.raises(keys.KeyringError, match="not a keyring file"):
        keys.Keyring.open(ring_path, "x")


def test_missing_file_is_a_clear_error(ring_path: Path) -> None:
    with pytest.raises(keys.KeyringError, match="no keyring"):
        keys.Keyring.open(ring_path, "x")


def test_tampered_but_checksummed_file_still_fails(ring: keys.Keyring, ring_path: Path) -> None:
    # Someone who recomputes the checksum still cannot change the content undetected.
    from keys.keyring import _checksum

    doc = json.loads(ring_path.read_text())
    doc["kdf"]["time_cost"] = 2
    doc["checksum"] = _checksum(doc)
    ring_path.write_text(json.dumps(doc))
    with pytest.raises(keys.KeyringError):
        keys.Keyring.open(ring_path, "correct horse")


def test_hostile_kdf_parameters_are_refused(ring: keys.Keyring, ring_path: Path) -> None:
    from keys.keyring import _checksum

    doc = json.loads(ring_path.read_text())
    doc["kdf"]["memory_cost_kib"] = 2**40
    doc["checksum"] = _checksum(doc)
    ring_path.write_text(json.dumps(doc))
    with pytest.raises(keys.KeyringError, match="out of range"):
        keys.Keyring.open(ring_path, "correct horse")


def test_wrap_unwrap_round_trip(ring: keys.Keyring, ring_path: Path) -> None:
    identity, _ = keys.generate_identity()
    wrapped = ring.wrap(identity)
    assert identity.encode() not in wrapped
    assert keys.Keyring.version_of(wrapped) == 1
    reopened = keys.Keyring.open(ring_path, "correct horse")
    assert reopened.unwrap(wrapped) == identity


def test_wrap_refuses_a_non_identity(ring: keys.Keyring) -> None:
    with pytest.raises(ValueError):
        ring.wrap("age1notanidentity")


def test_altered_wrapped_identity_is_refused(ring: keys.Keyring) -> None:
    wrapped = ring.wrap(keys.generate_identity()[0])
    for pos in range(len(wrapped)):
        altered = bytearray(wrapped)
        altered[pos] ^= 0x04
        with pytest.raises(keys.KeyringError):
            ring.unwrap(bytes(altered))
    with pytest.raises(keys.KeyringError):
        ring.unwrap(wrapped[:-1])


def test_identity_wrapped_by_another_ring_is_refused(ring: keys.Keyring, tmp_path: Path) -> None:
    other = keys.Keyring.create(tmp_path / "other.json", "correct horse", kdf=FAST)
    with pytest.raises(keys.KeyringError):
        ring.unwrap(other.wrap(keys.generate_identity()[0]))


def test_rotation_rewraps_without_touching_payloads(ring: keys.Keyring, ring_path: Path) -> None:
    identity, recipient = keys.generate_identity()
    sealed = io.BytesIO()
    keys.seal(io.BytesIO(b"payload"), sealed, [recipient])
    wrapped_v1 = ring.wrap(identity)

    assert ring.rotate() == 2
    assert ring.current_version == 2 and ring.versions == (1, 2)
    assert ring.unwrap(wrapped_v1) == identity  # older versions still open
    wrapped_v2 = ring.rewrap(wrapped_v1)
    assert keys.Keyring.version_of(wrapped_v2) == 2
    assert keys.Keyring.version_of(ring.wrap(identity)) == 2
    assert ring.rewrap(wrapped_v2) == wrapped_v2

    reopened = keys.Keyring.open(ring_path, "correct horse")
    assert reopened.current_version == 2
    out = io.BytesIO()
    keys.unseal(io.BytesIO(sealed.getvalue()), out, reopened.unwrap(wrapped_v2))
    assert out.getvalue() == b"payload"

    reopened.retire(1)
    with pytest.raises(keys.KeyringError, match="version 1 is not in this keyring"):
        reopened.unwrap(wrapped_v1)
    assert reopened.unwrap(wrapped_v2) == identity
    with pytest.raises(keys.KeyringError):
        reopened.retire(2)
    with pytest.raises(keys.KeyringError):
        reopened.retire(7)


def test_missing_version_is_a_clear_error(ring: keys.Keyring) -> None:
    forged = bytearray(ring.wrap(keys.generate_identity()[0]))
    forged[4:8] = (9).to_bytes(4, "big")
    with pytest.raises(keys.KeyringError, match="version 9 is not in this keyring"):
        ring.unwrap(bytes(forged))


def test_named_secrets(ring: keys.Keyring, ring_path: Path) -> None:
    assert not ring.has_secret("log-signing")
    with pytest.raises(keys.KeyringError, match="no secret named"):
        ring.secret("log-signing")
    ring.set_secret("log-signing", b"\x01" * 32)
    ring.set_secret("token-signing", keys.generate_token_key().encode())
    ring.set_secret("log-signing", b"\x02" * 32)
    reopened = keys.Keyring.open(ring_path, "correct horse")
    assert reopened.secret("log-signing") == b"\x02" * 32
    assert reopened.secret("token-signing").startswith(b"-----BEGIN PRIVATE KEY-----")


def test_two_handles_do_not_lose_each_others_changes(ring: keys.Keyring, ring_path: Path) -> None:
    other = keys.Keyring.open(ring_path, "correct horse")
    ring.set_secret("a", b"1")
    other.set_secret("b", b"2")
    assert other.rotate() == 2
    final = keys.Keyring.open(ring_path, "correct horse")
    assert final.secret("a") == b"1" and final.secret("b") == b"2"
    assert final.current_version == 2


def test_writes_leave_no_temporary_files(ring: keys.Keyring, ring_path: Path) -> None:
    ring.rotate()
    ring.set_secret("x", b"y")
    names = sorted(p.name for p in ring_path.parent.iterdir())
    assert names == ["keyring.json", "keyring.json.lock"]


def test_failed_write_leaves_the_old_file(
    ring: keys.Keyring, ring_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = ring_path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        ring.rotate()
    monkeypatch.undo()
    assert ring_path.read_bytes() == before
    assert sorted(p.name for p in ring_path.parent.iterdir()) == [
        "keyring.json",
        "keyring.json.lock",
    ]
    assert keys.Keyring.open(ring_path, "correct horse").current_version == 1


def test_change_passphrase(ring: keys.Keyring, ring_path: Path) -> None:
    wrapped = ring.wrap(keys.generate_identity()[0])
    ring.change_passphrase("battery staple")
    with pytest.raises(keys.KeyringError, match="wrong passphrase"):
        keys.Keyring.open(ring_path, "correct horse")
    reopened = keys.Keyring.open(ring_path, "battery staple")
    reopened.unwrap(wrapped)


def test_recovery_key_opens_the_ring_under_a_new_passphrase(
    ring: keys.Keyring, ring_path: Path
) -> None:
    identity = keys.generate_identity()[0]
    wrapped = ring.wrap(identity)
    ring.set_secret("log-signing", b"seed")
    recovery = ring.recovery_key()
    recovered = keys.Keyring.recover(ring_path, recovery, "new passphrase")
    assert recovered.unwrap(wrapped) == identity
    assert keys.Keyring.open(ring_path, "new passphrase").secret("log-signing") == b"seed"
    before = ring_path.read_bytes()
    with pytest.raises(keys.KeyringError):
        keys.Keyring.recover(ring_path, os.urandom(32), "whatever")
    assert ring_path.read_bytes() == before


def test_keyring_is_a_keystore(ring: keys.Keyring) -> None:
    store: keys.KeyStore = ring
    assert isinstance(store, keys.KeyStore)
    assert store.unwrap(store.wrap(keys.generate_identity()[0])).startswith("AGE-SECRET-KEY-1")
