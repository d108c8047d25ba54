"""Where plaintext may be written: a directory whose file system lives in memory only.

Decrypted originals are handed to the parser as files (Tika needs random access). They must
never reach a disk, where deleting them leaves the blocks readable (DESIGN.md promise 1), so
the directory is checked by its file-system type, as the kernel reports it (statfs(2)
`f_type`), not by its name: a tmpfs or a ramfs, nothing else.

**Swap is a disk too:** tmpfs pages can be swapped out; run the workers without swap or with
encrypted swap (docs/ingest.md).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
from pathlib import Path
from typing import Final

__all__ = ["MEMORY_FILE_SYSTEMS", "PRIVATE_PREFIX", "ScratchError", "memory_dir", "sweep_dead"]

# A process's private directory in the scratch: `<prefix><pid>-<random>`, so that a dead
# process's can be told from a live one's.
PRIVATE_PREFIX: Final = "tvault-worker-"
# linux/magic.h
MEMORY_FILE_SYSTEMS: Final = {0x01021994: "tmpfs", 0x858458F6: "ramfs"}
# struct statfs starts with `__fsword_t f_type` (a long on 64-bit Linux, an int on 32-bit
# ABIs, whose low bytes a little-endian long read still gives); 120 bytes hold the whole struct.
_STATFS_SIZE: Final = 256


class ScratchError(ValueError):
    """The scratch directory is missing, not private to this user, or not in memory."""


@functools.cache
def _libc() -> ctypes.CDLL:
    # The C library this process already runs on: `ctypes.util.find_library("c")` would start
    # `ldconfig -p` to find it, on every check of the scratch (each `/readyz` included).
    return ctypes.CDLL(None, use_errno=True)


def _fs_type(path: Path) -> int:
    libc = _libc()
    buffer = ctypes.create_string_buffer(_STATFS_SIZE)
    if libc.statfs(os.fsencode(path), buffer) != 0:
        errno = ctypes.get_errno()
        raise ScratchError(f"{path}: {os.strerror(errno)}")
    return ctypes.c_ulong.from_buffer(buffer).value & 0xFFFFFFFF


def memory_dir(path: Path) -> Path:
    """Return `path` resolved, if it is a directory on a tmpfs or ramfs this user may write.

    Raises `ScratchError` naming the file-system type found otherwise, so a worker refuses to
    start rather than decrypt a testimony onto a disk.
    """
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise ScratchError(f"scratch directory {resolved} does not exist")
    if not os.access(resolved, os.W_OK | os.X_OK):
        raise ScratchError(f"scratch directory {resolved} is not writable by this user")
    kind = _fs_type(resolved)
    if kind not in MEMORY_FILE_SYSTEMS:
        raise ScratchError(
            f"scratch directory {resolved} is not in memory (file-system type {kind:#x}, "
            "not tmpfs or ramfs): decrypted originals would reach a disk"
        )
    return resolved


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead(base: Path) -> int:
    """Remove the private directories (`PRIVATE_PREFIX<pid>-*`) of dead processes under
    `base`; return how many. Never one of a live process, a symbolic link, or another user's.

    A process killed with SIGKILL runs no `finally`: the plaintext it was parsing stays in its
    0700 directory until the next process on the vault starts and calls this.
    """
    removed = 0
    for path in Path(base).glob(f"{PRIVATE_PREFIX}*"):
        pid = path.name.removeprefix(PRIVATE_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)) or path.is_symlink():
            continue
        if path.is_dir() and path.stat().st_uid == os.getuid():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
