"""glibc `malloc` settings for the long-lived processes: `tvault serve` and `tvault worker`.

A server hands around buffers of 16-256 KiB by the thousand (socket reads of an upload, object
chunks). With glibc's defaults, the top of the heap is given back to the system whenever it
shrinks and taken again when it grows, so the same memory is faulted in over and over; on a
virtual machine whose free memory goes back to the host, each of those pages also costs the
host a fault. Measured on the 2-core machine of bench/RESULTS.md: receiving a 1 GiB body under
uvicorn took 1.2 s of event-loop CPU with the defaults and 0.2 s with the settings below.

The settings keep a bounded amount of freed memory (about `TRIM_THRESHOLD` + `TOP_PAD` per
malloc arena) for reuse. An operator who sets glibc's own `MALLOC_*_` variables or
`GLIBC_TUNABLES` keeps them: nothing is changed then.
"""

from __future__ import annotations

import ctypes
import os

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1024 * 1024  # blocks below this come from the heap, not a fresh mapping
TRIM_THRESHOLD = 32 * 1024 * 1024  # free memory kept at the top of the heap before trimming
TOP_PAD = 16 * 1024 * 1024  # extra memory taken whenever the heap grows

_OPERATOR_SETTINGS = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_THRESHOLD_",
    "GLIBC_TUNABLES",
)


def tune() -> bool:
    """Apply the settings above to this process; return whether they were applied.

    False where the C library is not glibc (no `mallopt`) or the operator set their own.
    """
    if any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it; musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
        )
    )
