"""SSH wire-format parsing (RFC 4251 section 5): strings, uint32 and mpints, bounds-checked."""

from __future__ import annotations

import struct

__all__ = ["Reader", "WireError", "read_mpint_pair", "ssh_string"]


class WireError(ValueError):
    """The bytes are not well-formed SSH wire data."""


def ssh_string(data: bytes) -> bytes:
    """Encode `data` as an SSH `string` (uint32 length, then the bytes)."""
    return struct.pack(">I", len(data)) + data


class Reader:
    """Read SSH wire fields from a byte string; every read is bounds-checked."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def uint32(self) -> int:
        """Read a uint32. Raises `WireError` if the data ends first."""
        if self._pos + 4 > len(self._data):
            raise WireError("truncated uint32")
        (value,) = struct.unpack_from(">I", self._data, self._pos)
        self._pos += 4
        return int(value)

    def string(self) -> bytes:
        """Read an SSH `string`. Raises `WireError` if its length runs past the data."""
        length = self.uint32()
        if self._pos + length > len(self._data):
            raise WireError("truncated string")
        value = self._data[self._pos : self._pos + length]
        self._pos += length
        return value

    def mpint(self) -> int:
        """Read a non-negative SSH `mpint`. Raises `WireError` on a negative value."""
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise WireError("negative mpint")
        return int.from_bytes(raw, "big")

    def raw(self, n: int) -> bytes:
        """Read exactly `n` bytes. Raises `WireError` if fewer remain."""
        if self._pos + n > len(self._data):
            raise WireError("truncated data")
        value = self._data[self._pos : self._pos + n]
        self._pos += n
        return value

    def done(self) -> None:
        """Raise `WireError` if any bytes are left unread (no trailing data is accepted)."""
        if self._pos != len(self._data):
            raise WireError("trailing data")


def read_mpint_pair(data: bytes) -> tuple[int, int]:
    """Read the (r, s) mpint pair of an SSH ECDSA signature (RFC 5656 3.1.2)."""
    reader = Reader(data)
    r, s = reader.mpint(), reader.mpint()
    reader.done()
    return r, s
