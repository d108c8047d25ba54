"""Page-aligned buffers, for writes that bypass the page cache (`O_DIRECT` needs them aligned)."""

from __future__ import annotations

import ctypes
import mmap

PAGE = mmap.PAGESIZE


def address(view: memoryview) -> int | None:
    """Return where `view`'s first byte lives, or None for a read-only buffer (e.g. `bytes`)."""
    if view.readonly or not view.nbytes:
        return None
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def is_page_aligned(view: memoryview) -> bool:
    """True if `view` is writable and starts on a page boundary."""
    start = address(view)
    return start is not None and start % PAGE == 0


def aligned_buffer(size: int) -> memoryview:
    """A writable `size`-byte view starting on a page boundary.

    Carved out of an ordinary `bytearray` (one page larger), so its memory comes from, and goes
    back to, the process heap like any other: no fresh mapping per buffer.
    """
    backing = memoryview(bytearray(size + PAGE))
    start = address(backing)
    assert start is not None
    offset = -start % PAGE
    return backing[offset : offset + size]
