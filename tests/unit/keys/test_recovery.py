"""Recovery shares (SLIP-39 via shamir-mnemonic): k of n rebuild, fewer fail clearly."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

import keys

VECTOR = json.loads(
    (
        Path(__file__).resolve().parents[2] / "vectors" / "keys-recovery" / "shares-3-of-5.json"
    ).read_text()
)
FAST = keys.KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


def test_vector_any_three_of_five_rebuild_the_secret() -> None:
    # Shares written down in an earlier release must still combine.
    secret = bytes.fromhex(VECTOR["secret_hex"])
    for subset in itertools.combinations(VECTOR["shares"], 3):
        assert keys.combine_shares(subset) == secret
    assert keys.combine_shares(VECTOR["shares"]) == secret


def test_vector_any_two_of_five_fail_clearly() -> None:
    for subset in itertools.combinations(VECTOR["shares"], 2):
        with pytest.raises(keys.RecoveryError, match="do not rebuild"):
            keys.combine_shares(subset)


def test_duplicate_share_does_not_count_twice() -> None:
    a, b = VECTOR["shares"][:2]
    with pytest.raises(keys.RecoveryError):
        keys.combine_shares([a, b, a])


def test_round_trip_and_whitespace_and_case_tolerance() -> None:
    secret = os.urandom(32)
    shares = keys.split_secret(secret, 4, 2)
    assert len(set(shares)) == 4
    assert all(secret.hex() not in s for s in shares)
    messy = ["  " + shares[3].upper().replace(" ", "\n  ") + "\n", "", shares[1]]
    assert keys.combine_shares(messy) == secret


def test_mistyped_share_is_caught_by_its_checksum() -> None:
    shares = VECTOR["shares"][:3]
    words = shares[0].split()
    words[5] = "academic" if words[5] != "academic" else "acid"
    with pytest.raises(keys.RecoveryError):
        keys.combine_shares([" ".join(words), *shares[1:]])


def test_shares_from_different_splits_do_not_mix() -> None:
    first = keys.split_secret(os.urandom(32), 3, 2)
    second = keys.split_secret(os.urandom(32), 3, 2)
    with pytest.raises(keys.RecoveryError):
        keys.combine_shares([first[0], second[1]])


@pytest.mark.parametrize(("shares", "threshold"), [(3, 1), (2, 3), (17, 3), (0, 0)])
def test_bad_parameters_are_refused(shares: int, threshold: int) -> None:
    with pytest.raises(ValueError):
        keys.split_secret(os.urandom(32), shares, threshold)


def test_bad_secret_lengths_are_refused() -> None:
    for size in (0, 15, 33, 66):
        with pytest.raises(ValueError):
            keys.split_secret(os.urandom(size), 3, 2)


def test_empty_share_list_is_refused() -> None:
    with pytest.raises(keys.RecoveryError):
        keys.combine_shares([])
    with pytest.raises(keys.RecoveryError):
        keys.combine_shares(["", "  "])


def test_keyring_recovers_from_k_of_n_shares(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = keys.Keyring.create(path, "forgotten passphrase", kdf=FAST)
    identity, _ = keys.generate_identity()
    wrapped = ring.wrap(identity)
    ring.rotate()
    shares = keys.split_secret(ring.recovery_key(), 5, 3)
    del ring

    recovered = keys.Keyring.recover(path, keys.combine_shares(shares[2:]), "new passphrase")
    assert recovered.unwrap(wrapped) == identity
    assert recovered.current_version == 2
    assert keys.Keyring.open(path, "new passphrase").unwrap(wrapped) == identity
    with pytest.raises(keys.RecoveryError):
        keys.combine_shares(shares[:2])
