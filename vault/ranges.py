"""HTTP `Range` (RFC 9110 14): one `bytes=` range of a file the vault sends, and the slicing of
a stream of chunks to it. Shared by the export download and the item download and preview."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from vault.errors import VaultError

_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(VaultError):
    """The `Range` asked for starts at or past the end of the file (`size` is its length)."""

    code = "range-not-satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes; the range asked for starts past its end")
        self.size = size


def parse_range(header: str | None, total: int) -> tuple[int, int] | None:
    """Return `(start, end)` (inclusive) of a single `bytes=` range, or None to send it all.

    A header we do not understand, or one with several ranges, is ignored (RFC 9110 14.2: a
    server may): the whole file is sent, with 200. Raises `RangeNotSatisfiable` when the range
    starts past the end.
    """
    if not header:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None or (not found.group(1) and not found.group(2)):
        return None
    first, last = found.group(1), found.group(2)
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable(total)
        return max(0, total - length), total - 1
    start = int(first)
    end = min(int(last), total - 1) if last else total - 1
    if start >= total:
        raise RangeNotSatisfiable(total)
    if end < start:
        return None
    return start, end


def sliced(chunks: Iterator[bytes], skip: int, length: int) -> Iterator[bytes]:
    """Yield `length` bytes of `chunks` after the first `skip`; close `chunks` when done, so a
    decrypting stream stops reading its object at the range's end."""
    try:
        for chunk in chunks:
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            piece = chunk[skip : skip + length] if skip or len(chunk) > length else chunk
            skip = 0
            length -= len(piece)
            yield bytes(piece)
            if length <= 0:
                return
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
