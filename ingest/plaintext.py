"""A private, short-lived plaintext copy of a sealed object, for a parser that needs a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["plaintext_file"]


@contextlib.contextmanager
def plaintext_file(chunks: Iterable[bytes], *, directory: Path | None = None) -> Iterator[Path]:
    """Write `chunks` to a new file readable only by this user; yield its path; delete it.

    The file (mode 0600, opened with O_EXCL and O_NOFOLLOW) sits in a fresh directory of mode
    0700, both removed on exit whatever happens inside. A pipe would not do: Tika needs random
    access for PDF and zip-based formats and would spool a stream to /tmp itself. Pass a tmpfs
    `directory` (e.g. /dev/shm) to keep the plaintext off disk when the file fits in memory.
    Memory stays flat: chunks are written as they come.
    """
    with tempfile.TemporaryDirectory(prefix="tvault-extract-", dir=directory) as tmp:
        path = Path(tmp) / "plaintext"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        yield path
