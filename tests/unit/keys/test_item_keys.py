"""Item keys under a per-item KEK and a replaceable epoch key (keys.item_keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

import keys

PASSPHRASE = "item keys passphrase"
FAST = keys.KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


@pytest.fixture
def ring(tmp_path: Path) -> keys.Keyring:
    return keys.Keyring.create(tmp_path / "keyring", PASSPHRASE, kdf=FAST)


def test_an_item_key_opens_only_for_its_item_and_while_its_epoch_key_exists(
    ring: keys.Keyring,
) -> None:
    identity, _recipient = keys.generate_identity()
    epoch = keys.new_epoch(ring)
    wrapped = keys.seal_item(ring, b"item-a", ring.wrap(identity), epoch)
    assert wrapped[:4] == b"tvk2" and len(wrapped) == 180
    assert keys.open_item(ring, b"item-a", wrapped) == identity
    # Bound to its item: moved to another row, it does not open.
    with pytest.raises(keys.KeyringError):
        keys.open_item(ring, b"item-b", wrapped)
    for at in (5, 30, 100, 179):  # epoch, sealed KEK, sealed identity, tag
        altered = bytearray(wrapped)
        altered[at] ^= 1
        with pytest.raises(keys.KeyringError):
            keys.open_item(ring, b"item-a", bytes(altered))
    # Moved to a new epoch, the old epoch's key can go; the old bytes then open nowhere.
    newer = keys.new_epoch(ring)
    moved = keys.move_item(ring, b"item-a", wrapped, newer)
    assert keys.forget_epoch(ring, epoch)
    assert keys.open_item(ring, b"item-a", moved) == identity
    with pytest.raises(keys.KeyringError):
        keys.open_item(ring, b"item-a", wrapped)
    reopened = keys.Keyring.open(ring.path, PASSPHRASE)  # the file, not this process's memory
    with pytest.raises(keys.KeyringError):
        keys.open_item(reopened, b"item-a", wrapped)
    assert keys.open_item(reopened, b"item-a", moved) == identity


def test_an_older_master_wrapped_key_still_opens_and_gains_a_kek_when_moved(
    ring: keys.Keyring,
) -> None:
    identity, _recipient = keys.generate_identity()
    legacy = ring.wrap(identity)
    assert keys.open_item(ring, b"item-a", legacy) == identity
    moved = keys.move_item(ring, b"item-a", legacy, keys.new_epoch(ring))
    assert moved[:4] == b"tvk2"
    assert keys.wrapped_identity(ring, b"item-a", moved) == legacy
    assert keys.open_item(ring, b"item-a", moved) == identity


def test_rotation_rewraps_the_identity_inside_under_the_same_epoch(ring: keys.Keyring) -> None:
    identity, _recipient = keys.generate_identity()
    epoch = keys.new_epoch(ring)
    wrapped = keys.seal_item(ring, b"item-a", ring.wrap(identity), epoch)
    ring.rotate()
    rewrapped = keys.rewrap_item(ring, b"item-a", wrapped)
    inner = keys.wrapped_identity(ring, b"item-a", rewrapped)
    assert keys.Keyring.version_of(inner) == 2
    assert rewrapped[4:20] == wrapped[4:20]  # the same epoch
    ring.retire(1)
    assert keys.open_item(ring, b"item-a", rewrapped) == identity


def test_a_secret_added_by_another_process_is_found_and_never_overwritten(
    ring: keys.Keyring,
) -> None:
    other = keys.Keyring.open(ring.path, PASSPHRASE)  # as the server beside a CLI
    assert other.add_secret("epoch/x", b"first") == b"first"
    assert ring.secret("epoch/x") == b"first"  # read again from the file on a miss
    assert ring.add_secret("epoch/x", b"second") == b"first"
    assert ring.delete_secret("epoch/x") and not ring.delete_secret("epoch/x")
    with pytest.raises(keys.KeyringError):
        keys.Keyring.open(ring.path, PASSPHRASE).secret("epoch/x")
