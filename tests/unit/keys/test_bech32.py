"""Bech32 as age uses it, against the BIP 173 test vectors."""

from __future__ import annotations

import pytest

from keys import _bech32

# BIP 173, "Test vectors": valid Bech32 strings.
VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11" + "q" * 82 + "c8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

# BIP 173, "Test vectors": invalid strings (the 90-character limit is not one of age's rules,
# so that vector is left out).
INVALID = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",  # HRP character out of range
    "\x801eym55h",  # HRP character out of range
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with upper-case HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]


@pytest.mark.parametrize("text", VALID)
def test_bip173_valid_strings_decode_and_reencode(text: str) -> None:
    hrp, data = _bech32.decode(text)
    assert _bech32.encode(hrp, data) == text.lower()


@pytest.mark.parametrize("text", INVALID)
def test_bip173_invalid_strings_are_refused(text: str) -> None:
    with pytest.raises(_bech32.Bech32Error):
        _bech32.decode(text)


def test_mixed_case_is_refused() -> None:
    with pytest.raises(_bech32.Bech32Error, match="mixed case"):
        _bech32.decode("A12uEL5L")


def test_non_zero_padding_is_refused() -> None:
    # 'l' is 31: its low bits cannot be padding of a whole number of bytes.
    text = _bech32.encode("age", bytes(32))
    values = list(text[4:-6])
    values[-1] = "l"
    forged_data = "".join(values)
    from keys._bech32 import _CHARSET, _hrp_expand, _polymod

    ints = [_CHARSET.index(c) for c in forged_data]
    polymod = _polymod([*_hrp_expand("age"), *ints, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = "".join(_CHARSET[(polymod >> 5 * (5 - i)) & 31] for i in range(6))
    with pytest.raises(_bech32.Bech32Error, match="padding"):
        _bech32.decode("age1" + forged_data + checksum)
