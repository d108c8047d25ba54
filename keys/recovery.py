"""Recovery shares: k-of-n Shamir shares of the keyring's recovery key, as SLIP-39 mnemonics.

Built on `shamir-mnemonic`, SatoshiLabs' reference implementation of SLIP-0039: each share is
a list of words a trustee can write on paper, with an RS1024 checksum that catches typos, and
the set carries a digest that catches shares from different splits. Fewer than k shares
reveal nothing about the secret (Shamir's scheme over GF(256)) and fail with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence

import shamir_mnemonic

__all__ = ["RecoveryError", "combine_shares", "split_secret"]

MAX_SHARES = 16
"""SLIP-39 allows at most 16 members in a group."""


class RecoveryError(Exception):
    """The shares do not rebuild a secret: too few, mistyped, or from different splits."""


def split_secret(secret: bytes, shares: int, threshold: int) -> list[str]:
    """Split `secret` into `shares` mnemonic strings, any `threshold` of which rebuild it.

    Raises `ValueError` unless 2 <= threshold <= shares <= 16 and `secret` is 16 to 64 bytes
    of even length (SLIP-39 limits).
    """
    if not (2 <= threshold <= shares <= MAX_SHARES):
        raise ValueError(f"need 2 <= threshold <= shares <= {MAX_SHARES}")
    if not (16 <= len(secret) <= 64) or len(secret) % 2:
        raise ValueError("the secret must be 16 to 64 bytes, an even number")
    # One group, `threshold` of `shares` members; no SLIP-39 passphrase (the shares
    # themselves are the protection, held by different trustees).
    groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, shares)], secret)
    return [str(m) for m in groups[0]]


def combine_shares(shares: Sequence[str]) -> bytes:
    """Rebuild the secret from at least `threshold` of its shares (extra shares are fine).

    Raises `RecoveryError` if there are too few shares, a share is mistyped (checksum), or
    the shares come from different splits.
    """
    cleaned = list(dict.fromkeys(" ".join(s.split()).lower() for s in shares if s.strip()))
    if not cleaned:
        raise RecoveryError("no recovery shares given")
    try:
        parsed = [shamir_mnemonic.Share.from_mnemonic(s) for s in cleaned]
    except shamir_mnemonic.MnemonicError as exc:
        raise RecoveryError(f"a share is mistyped or damaged: {exc}") from None
    if len({p.common_parameters() for p in parsed}) != 1:
        raise RecoveryError("the shares come from different splits")
    threshold = parsed[0].member_threshold
    if len({p.index for p in parsed}) < threshold:
        raise RecoveryError(f"the shares do not rebuild the secret: {threshold} are needed")
    # SLIP-39 takes exactly `threshold` shares; the checked digest makes any k of them agree.
    chosen = list(dict((p.index, s) for p, s in zip(parsed, cleaned, strict=True)).values())
    try:
        secret = shamir_mnemonic.combine_mnemonics(chosen[:threshold])
    except (shamir_mnemonic.MnemonicError, ValueError) as exc:
        raise RecoveryError(f"the shares do not rebuild the secret: {exc}") from None
    return bytes(secret)
