"""Bech32 (BIP 173) as age uses it: no 90-character limit, one case per string."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["Bech32Error", "decode", "encode"]

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """The string is not valid Bech32."""


def _table() -> tuple[int, ...]:
    # The XOR of the generators selected by each 5-bit value of the top bits: one lookup per
    # character instead of five tests (the same polynomial as BIP 173's reference loop).
    table = []
    for top in range(32):
        value = 0
        for i in range(5):
            if (top >> i) & 1:
                value ^= _GENERATOR[i]
        table.append(value)
    return tuple(table)


_TABLE = _table()


def _polymod(values: list[int], chk: int = 1) -> int:
    for value in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ value) ^ _TABLE[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    # Through one integer: a key is 256 bits, and big-integer shifts are much cheaper in Python
    # than a per-bit accumulator loop. Same results as BIP 173's reference `convertbits`.
    if from_bits == 8:
        number = int.from_bytes(bytes(data), "big")
    else:
        number = 0
        for value in data:
            number = number << from_bits | value
    count, rest = divmod(len(data) * from_bits, to_bits)
    if pad:
        if rest:
            number <<= to_bits - rest
            count += 1
    elif rest >= from_bits or number & ((1 << rest) - 1):
        # BIP 173: padding must be less than 5 bits and all zero, so each string is canonical.
        raise Bech32Error("invalid padding")
    else:
        number >>= rest
    if to_bits == 8:
        return list(number.to_bytes(count, "big"))
    mask = (1 << to_bits) - 1
    return [(number >> to_bits * (count - 1 - i)) & mask for i in range(count)]


@lru_cache(maxsize=8)
def _hrp_state(hrp: str) -> int:
    # The checksum state after the human-readable part, which a vault encodes over and over
    # (each unwrapped item identity): a third of the work of encoding a key.
    return _polymod(_hrp_expand(hrp))


def encode(hrp: str, data: bytes) -> str:
    """Encode `data` under the lower-case human-readable part `hrp`."""
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod([*values, 0, 0, 0, 0, 0, 0], _hrp_state(hrp)) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """Decode `text`; return its lower-cased human-readable part and data.

    Raises `Bech32Error` on mixed case, a bad character, a bad checksum or bad padding.
    """
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise Bech32Error("missing separator or checksum")
    hrp = text[:pos]
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise Bech32Error("invalid human-readable part")
    try:
        values = [_VALUES[c] for c in text[pos + 1 :]]
    except KeyError:
        raise Bech32Error("invalid character") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise Bech32Error("invalid checksum")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))
