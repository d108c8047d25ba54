"""Making a file system change durable, shared by the local object store and resumable uploads."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Sync the directory `path`: a rename, link or new file in it is only durable once the
    directory entry is (POSIX leaves the directory's own data to fsync of the directory)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
