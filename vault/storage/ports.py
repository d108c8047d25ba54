"""The `ObjectStore` port: where sealed objects (age v1 ciphertext) live, and its errors.

Object names are chosen by the vault, final and unguessable; a store never overwrites one. A
name is one or more `/`-separated segments of `[A-Za-z0-9][A-Za-z0-9._-]*`, at most
`MAX_NAME_LENGTH` characters in all: no empty, `.` or `..` segment, nothing that a directory
adapter could turn into a path outside its root. `check_name` enforces it for every adapter.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

# Bytes read at a time when a finished local file is copied into a store (`copy_in`).
_COPY_BLOCK = 1024 * 1024

# 255 keeps the local adapter's file name (the name with "/" encoded) inside the usual
# NAME_MAX of Linux and macOS file systems; S3 allows 1024 bytes, so S3 is never the limit.
MAX_NAME_LENGTH = 255

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
# A prefix is whole segments, each followed by "/", then possibly the start of one more.
_PREFIX = re.compile(rf"(?:{_SEGMENT}/)*(?:[A-Za-z0-9][A-Za-z0-9._-]*)?")


class StorageError(Exception):
    """The object store failed (I/O, network, server refused); the message says how."""


class StoreFull(StorageError):
    """The store has no room for more bytes or objects (ENOSPC, EDQUOT; an S3 server's "storage
    full" or quota answer). Writing again may succeed once an operator frees space."""


class StoreUnavailable(StorageError):
    """The store refuses every write for now: mounted read-only (EROFS), not writable by this
    process (EACCES, EPERM on its directory), or unreachable (an S3 server down or refusing)."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause  # "read-only" or "unreachable", for the problem and the ledger


# Errors that say the store, not the request, is at fault. EACCES and EPERM count: a store
# directory that became unwritable (a remount, changed ownership) refuses every deposit alike.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def os_error(message: str, exc: OSError) -> StorageError:
    """Return the `StorageError` for `exc` of a local file system: `StoreFull` for a full disk
    or quota, `StoreUnavailable` for a read-only or unwritable one, plain `StorageError` else."""
    text = f"{message}: {exc}"
    if exc.errno in _FULL_ERRNOS:
        return StoreFull(text)
    if exc.errno in _READ_ONLY_ERRNOS:
        return StoreUnavailable(text, "read-only")
    return StorageError(text)


class InvalidObjectName(StorageError, ValueError):
    """The name (or prefix) is not a valid object name; nothing was touched."""


class ObjectNotFound(StorageError):
    """No committed object has this name."""


class ObjectExists(StorageError):
    """An object already has this name; names are final, so it is never overwritten."""


class ObjectLocked(StorageError):
    """The object is locked (retention holds), so it cannot be deleted or replaced."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One committed object: its name, size in bytes and last modification time (UTC-aware)."""

    name: str
    size: int
    modified: datetime


def check_name(name: str) -> str:
    """Return `name` if it is a valid object name. Raises `InvalidObjectName` otherwise."""
    if (
        not isinstance(name, str)
        or len(name) > MAX_NAME_LENGTH
        or _NAME.fullmatch(name) is None
        or any(segment in {".", ".."} for segment in name.split("/"))
    ):
        raise InvalidObjectName(f"invalid object name: {name!r}")
    return name


def check_prefix(prefix: str) -> str:
    """Return `prefix` if every name it selects could be valid. Raises `InvalidObjectName`."""
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_NAME_LENGTH
        or (_PREFIX.fullmatch(prefix) is None)
    ):
        raise InvalidObjectName(f"invalid object name prefix: {prefix!r}")
    return prefix


class ObjectWriter(Protocol):
    """A streamed upload under one name, used as a context manager.

    `write` any number of times, then `commit`. Leaving the context without `commit` (or
    after an exception, including one raised by `commit`) removes every trace of the upload:
    no temp file, no partial object, no unfinished multipart upload.
    """

    def write(self, data: bytes) -> int:
        """Append `data`; return its length. Raises `StorageError` on I/O failure."""
        ...

    def commit(self) -> None:
        """Make the object durable under its name. Raises `ObjectExists` if the name is taken,
        `StorageError` on failure; either way nothing is left behind once the context exits."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ObjectStore(Protocol):
    """Durable storage of write-once objects, streamed both ways (memory flat at any size)."""

    def writer(self, name: str) -> ObjectWriter:
        """Start a streamed upload of `name`. Raises `ObjectExists` if the name is taken,
        `InvalidObjectName` for a bad name."""
        ...

    def open(self, name: str) -> BinaryIO:
        """Open `name` for a streamed read; the caller closes it. Raises `ObjectNotFound`."""
        ...

    def exists(self, name: str) -> bool:
        """Return whether a committed object has this name."""
        ...

    def size(self, name: str) -> int:
        """Return the size in bytes of `name`. Raises `ObjectNotFound`."""
        ...

    def delete(self, name: str) -> None:
        """Remove `name` and all its data. Raises `ObjectNotFound` if absent, `ObjectLocked`
        while retention holds."""
        ...

    def lock(self, name: str) -> None:
        """Protect `name` from deletion (retention per the adapter's settings). Call only after
        the deposit committed, so a failed deposit's object can still be removed. Raises
        `ObjectNotFound`."""
        ...

    def names(self, prefix: str = "") -> Iterator[str]:
        """Yield the names of committed objects starting with `prefix`, in no set order."""
        ...

    def entries(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield `ObjectInfo` (name, size, modification time) of committed objects starting with
        `prefix`, in no set order; the sweep of unreferenced objects uses the time."""
        ...

    def put_locked(self, name: str, data: bytes) -> None:
        """Store a small write-once object and lock it at once (ledger checkpoints). Raises
        `ObjectExists` if the name is taken."""
        ...

    def adopt(self, name: str, source: Path) -> None:
        """Make the finished local file `source` (ciphertext, written and closed by the caller)
        the committed object `name`, as durable as one `writer` commits; `source` is gone
        afterwards. Raises `ObjectExists` if the name is taken, `StorageError` on failure;
        nothing is left under `name` then, and `source` is the caller's to remove.

        `copy_in` is the implementation for any store (it streams `source` through `writer`);
        the local store links the file into place instead, without a second copy.
        """
        ...

    def check_writable(self) -> None:
        """Raise `StoreFull` or `StoreUnavailable` if a write is sure to be refused now
        (readiness: `vault.readiness`); return otherwise. Cheap: it writes nothing."""
        ...

    def close(self) -> None:
        """Release what the store holds (file locks, connections). Idempotent."""
        ...


def copy_in(store: ObjectStore, name: str, source: Path) -> None:
    """`ObjectStore.adopt` for any store: stream `source` through `store.writer(name)`, commit,
    then remove `source`. Memory stays flat (one block at a time)."""
    try:
        src = open(source, "rb")  # noqa: SIM115 (closed below, before `source` is removed)
    except OSError as exc:
        raise os_error(f"cannot read {source.name} to store it as {name}", exc) from exc
    with src, store.writer(name) as out:
        while True:
            try:
                block = src.read(_COPY_BLOCK)
            except OSError as exc:
                raise os_error(f"cannot read {source.name} to store it as {name}", exc) from exc
            if not block:
                break
            out.write(block)
        out.commit()
    source.unlink(missing_ok=True)
