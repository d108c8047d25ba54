"""`ObjectStore` on a local directory: temp file, fsync, link into place, fsync the directory.

Layout under the root::

    .tmp/.lock              taken shared by writers while they create a temp file
    .tmp/w-XXXXXXXX         an upload in progress, flock()ed by its writer for its lifetime
    3f/a2/items+01J9...     the object "items/01J9..." ("/" encoded as "+")

The two fan-out levels come from SHA-256 of the name, so names of any shape (time-ordered ids
included) spread evenly, and every object is a leaf at depth three: no object can collide with a
directory, and no name can reach outside the root (`check_name` allows neither "/" in the file
name nor a leading ".").

Crash safety (DESIGN.md promise 7): an object appears under its name only by `link()`, which is
atomic and refuses an existing name, so nothing is ever overwritten, even by a racing writer:
from a writer's temp file, or from a finished file that `adopt` is given (a resumable upload's).
A killed writer leaves at most its temp file; the next `LocalObjectStore` on the same root
removes every temp file whose writer no longer holds its lock (the kernel drops `flock` locks of
dead processes), and leaves those of live writers in other processes alone.

Locking sets the file read-only (mode 0400); `delete` refuses a read-only object. There is no
retention period: an operator unlocks by hand (`chmod u+w`), deliberately and visibly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from vault.storage.buffers import aligned_buffer, is_page_aligned
from vault.storage.durable import fsync_dir
from vault.storage.ports import (
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    StorageError,
    StoreFull,
    StoreUnavailable,
    check_name,
    check_prefix,
    copy_in,
    os_error,
)

_TMP = ".tmp"
_CREATE_LOCK = ".lock"
_TMP_PREFIX = "w-"
_HEX = frozenset("0123456789abcdef")
_LOCKED_MODE = 0o400
_OBJECT_MODE = 0o600
# An upload holds about two windows of the page cache: each full window is handed to writeback,
# and dropped from the cache one window later, once written. A long upload otherwise fills the
# cache with ciphertext nobody reads soon, and on a virtual machine whose free memory goes back
# to the host, every fresh page-cache page costs a host fault: measured here, writing 1 GiB of
# fresh pages ran at 410-500 MB/s, and at 2,500 MB/s through a recycled window.
_WRITEBACK_WINDOW = 8 * 1024 * 1024
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)
# Full blocks of a large upload are written past the page cache where the file system allows:
# measured here, 1 GiB in 1 MiB O_DIRECT writes took 0.1 s of CPU, against 0.3-0.5 s through a
# recycled page-cache window.
_BLOCK = 1024 * 1024
_O_DIRECT = getattr(os, "O_DIRECT", 0)
# Below this much free space the store counts as full for readiness: not one block of a deposit
# would fit (a smaller deposit might, but the operator must act either way).
MIN_FREE = _BLOCK


def _set_direct(fd: int, *, on: bool) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    wanted = flags | _O_DIRECT if on else flags & ~_O_DIRECT
    if wanted != flags:
        fcntl.fcntl(fd, fcntl.F_SETFL, wanted)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _fanout(name: str) -> tuple[str, str, str]:
    digest = hashlib.sha256(name.encode("ascii")).hexdigest()
    return digest[:2], digest[2:4], name.replace("/", "+")


def _is_fanout_dir(entry: os.DirEntry[str]) -> bool:
    return len(entry.name) == 2 and set(entry.name) <= _HEX and entry.is_dir(follow_symlinks=False)


class LocalObjectStore:
    """An `ObjectStore` in the directory `root` (created with mode 0700 if missing).

    Raises `StorageError` if the directory cannot be created or prepared.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        self._tmp = self.root / _TMP
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._tmp.mkdir(mode=0o700, exist_ok=True)
            self._remove_orphans()
        except OSError as exc:
            raise os_error(f"cannot prepare object store at {self.root}", exc) from exc

    # -- paths and locks -------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        first, second, leaf = _fanout(check_name(name))
        return self.root / first / second / leaf

    @contextlib.contextmanager
    def _create_lock(self, operation: int) -> Iterator[None]:
        # A fresh open file description each time: flock() locks belong to the description, so
        # sharing one between threads would let one thread's unlock drop another's lock.
        fd = os.open(self._tmp / _CREATE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)

    def _remove_orphans(self) -> None:
        """Remove temp files left by writers that died (their flock is gone)."""
        # Exclusive: no writer is between creating its temp file and locking it meanwhile.
        with self._create_lock(fcntl.LOCK_EX):
            for entry in os.scandir(self._tmp):
                if not entry.name.startswith(_TMP_PREFIX):
                    continue
                try:
                    fd = os.open(entry.path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer, maybe in another process
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                finally:
                    os.close(fd)

    def _new_temp(self) -> tuple[int, Path]:
        with self._create_lock(fcntl.LOCK_SH):
            fd, path = tempfile.mkstemp(dir=self._tmp, prefix=_TMP_PREFIX)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                os.unlink(path)
                raise
        return fd, Path(path)

    def _make_dirs(self, path: Path) -> None:
        for directory in (path.parent.parent, path.parent):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                continue
            fsync_dir(directory.parent)

    # -- the port ------------------------------------------------------------------------

    def writer(self, name: str) -> LocalObjectWriter:
        """Start a streamed upload of `name`. Raises `ObjectExists` if the name is taken."""
        target = self._path(name)
        if target.exists():
            raise ObjectExists(f"object exists: {name}")
        try:
            fd, temp = self._new_temp()
        except OSError as exc:
            raise os_error(f"cannot create a temp file in {self._tmp}", exc) from exc
        return LocalObjectWriter(self, name, target, fd, temp)

    def open(self, name: str) -> BinaryIO:
        """Open `name` for reading. Raises `ObjectNotFound`."""
        # A string path, not `_path`: a search opens two objects per hit, and pathlib's joins
        # cost more than the open itself.
        first, second, leaf = _fanout(check_name(name))
        try:
            return open(os.path.join(self._root, first, second, leaf), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"no such object: {name}") from None
        except OSError as exc:
            raise os_error(f"cannot open object {name}", exc) from exc

    def exists(self, name: str) -> bool:
        """Return whether `name` is a committed object."""
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        """Return the size of `name` in bytes. Raises `ObjectNotFound`."""
        return self._stat(name).st_size

    def _stat(self, name: str) -> os.stat_result:
        try:
            return self._path(name).stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"no such object: {name}") from None
        except OSError as exc:
            raise os_error(f"cannot stat object {name}", exc) from exc

    def delete(self, name: str) -> None:
        """Remove `name`. Raises `ObjectNotFound`, or `ObjectLocked` if it was locked."""
        path = self._path(name)
        if not self._stat(name).st_mode & stat.S_IWUSR:
            raise ObjectLocked(f"object is locked: {name}")
        try:
            path.unlink()
            fsync_dir(path.parent)
        except FileNotFoundError:
            raise ObjectNotFound(f"no such object: {name}") from None
        except OSError as exc:
            raise os_error(f"cannot delete object {name}", exc) from exc

    def lock(self, name: str) -> None:
        """Make `name` read-only, so `delete` refuses it. Raises `ObjectNotFound`."""
        path = self._path(name)
        self._stat(name)
        try:
            os.chmod(path, _LOCKED_MODE)
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # the mode change is metadata; make it durable too
            finally:
                os.close(fd)
        except FileNotFoundError:
            raise ObjectNotFound(f"no such object: {name}") from None
        except OSError as exc:
            raise os_error(f"cannot lock object {name}", exc) from exc

    def names(self, prefix: str = "") -> Iterator[str]:
        """Yield the names of committed objects that start with `prefix`."""
        for info in self.entries(prefix):
            yield info.name

    def entries(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield name, size and modification time of objects whose name starts with `prefix`."""
        check_prefix(prefix)
        # `with`: a caller that stops early (readiness reads one entry) closes the generator,
        # and with it each directory handle, at once rather than when it is collected.
        try:
            with os.scandir(self.root) as firsts:
                for first in firsts:
                    if not _is_fanout_dir(first):
                        continue
                    with os.scandir(first.path) as seconds:
                        for second in seconds:
                            if not _is_fanout_dir(second):
                                continue
                            yield from self._entries_in(
                                first.name, second.name, second.path, prefix
                            )
        except OSError as exc:
            raise os_error(f"cannot list objects in {self.root}", exc) from exc

    def _entries_in(
        self, first: str, second: str, directory: str, prefix: str
    ) -> Iterator[ObjectInfo]:
        with os.scandir(directory) as found:
            yield from self._objects_in(found, first, second, prefix)

    def _objects_in(
        self, found: Iterator[os.DirEntry[str]], first: str, second: str, prefix: str
    ) -> Iterator[ObjectInfo]:
        for entry in found:
            name = entry.name.replace("+", "/")
            if not name.startswith(prefix) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                check_name(name)
            except ValueError:
                continue  # not ours
            if _fanout(name)[:2] != (first, second):
                continue  # not ours either
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted meanwhile
            yield ObjectInfo(name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def put_locked(self, name: str, data: bytes) -> None:
        """Write `data` as `name` and lock it. Raises `ObjectExists` if the name is taken."""
        with self.writer(name) as out:
            out.write(data)
            out.commit()
        self.lock(name)

    def adopt(self, name: str, source: Path) -> None:
        """Make the finished file `source` the object `name` by linking it into place (fsync
        of the file, `link`, fsync of the directory, as a writer commits), then unlink
        `source`. A `source` on another file system is copied through a writer instead
        (`copy_in`). Raises `ObjectExists` if the name is taken, `StorageError` otherwise;
        `source` stays then."""
        target = self._path(name)
        if target.exists():
            raise ObjectExists(f"object exists: {name}")
        linked = False
        try:
            fd = os.open(source, os.O_RDONLY)
            try:
                # The mode of the store's own objects; the time of adoption, so the sweep of
                # unreferenced objects gives it its full grace from now, as to a fresh write.
                os.fchmod(fd, _OBJECT_MODE)
                os.utime(fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._make_dirs(target)
            os.link(source, target)  # atomic, and refuses an existing name
            linked = True
            fsync_dir(target.parent)
        except FileExistsError:
            raise ObjectExists(f"object exists: {name}") from None
        except OSError as exc:
            if linked:
                with contextlib.suppress(OSError):
                    target.unlink()
            elif exc.errno == errno.EXDEV:
                copy_in(self, name, source)
                return
            raise os_error(f"cannot commit object {name}", exc) from exc
        with contextlib.suppress(FileNotFoundError):
            source.unlink()

    def check_writable(self) -> None:
        """Raise `StoreUnavailable` if the file system is mounted read-only or the store's
        directory is not writable by this process, `StoreFull` if less than `MIN_FREE` bytes
        (or no inode) are left to it."""
        try:
            st = os.statvfs(self._tmp)
            writable = os.access(self._tmp, os.W_OK)
        except OSError as exc:
            raise os_error(f"cannot look at the file system of {self.root}", exc) from exc
        if st.f_flag & os.ST_RDONLY or not writable:
            raise StoreUnavailable(f"object store at {self.root} is read-only", "read-only")
        # f_bavail and f_favail: what is left to a process without the superuser's reserve.
        if st.f_bavail * st.f_frsize < MIN_FREE or (st.f_files and not st.f_favail):
            raise StoreFull(f"object store at {self.root} is full")

    def close(self) -> None:
        """Nothing to release: every file and lock is held only while an upload runs."""


class LocalObjectWriter:
    """A streamed upload into a temp file of a `LocalObjectStore`; see `ObjectWriter`.

    Data is gathered into one page-aligned block of `_BLOCK` bytes; whole blocks of a caller's
    page-aligned buffer skip that copy. Each full block is written past the page cache
    (`O_DIRECT`) where the file system allows it, otherwise through the cache, handed to
    writeback and dropped from it a window later (`_write_back`). The last, partial block goes
    through the cache at `commit`. Either way `commit` makes it durable.
    """

    def __init__(self, store: LocalObjectStore, name: str, target: Path, fd: int, temp: Path):
        self._store = store
        self._name = name
        self._target = target
        self._temp = temp
        self._fd = fd
        self._committed = False
        self._closed = False
        self._block: memoryview | None = None  # page-aligned, made when first needed
        self._fill = 0
        self._direct = _O_DIRECT != 0  # until the file system refuses it
        self._written = 0  # bytes handed to the file
        self._window = 0  # where the writeback window being filled starts
        self._drop = 0  # below this, the cache holds no pages of ours worth keeping

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._discard()

    def write(self, data: bytes) -> int:
        """Append `data`. Raises `StorageError` on I/O failure or after commit/exit.

        Whole blocks of a page-aligned buffer (the deposit spool's) go to the file as they are,
        without a copy, when no partial block is waiting.
        """
        if self._closed or self._committed:
            raise StorageError(f"writer for {self._name} is closed")
        view = memoryview(data).cast("B")
        end = len(view)
        try:
            pos = 0
            whole = end - end % _BLOCK
            if self._fill == 0 and self._direct and whole and is_page_aligned(view):
                pos = self._write_direct(view[:whole])
            if pos < end and self._block is None:
                self._block = aligned_buffer(_BLOCK)
            while pos < end:
                assert self._block is not None
                take = min(_BLOCK - self._fill, end - pos)
                self._block[self._fill : self._fill + take] = view[pos : pos + take]
                self._fill += take
                pos += take
                if self._fill == _BLOCK:
                    self._write_block(self._block)
        except OSError as exc:
            raise os_error(f"cannot write object {self._name}", exc) from exc
        return end

    def _write_direct(self, view: memoryview) -> int:
        """Write `view` (whole blocks, page-aligned) past the page cache; return bytes written.

        Refused (EINVAL: not on this file system) or short: the page cache from then on.
        """
        written = 0
        try:
            _set_direct(self._fd, on=True)
            written = os.write(self._fd, view)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        self._written += written
        if written != len(view):
            self._direct = False
            _set_direct(self._fd, on=False)
        return written

    def _write_block(self, block: memoryview) -> None:
        rest = block[: self._fill]
        if self._direct:
            rest = rest[self._write_direct(rest) :]
        _write_all(self._fd, rest)
        self._written += len(rest)
        self._fill = 0
        if rest and self._written - self._window >= _WRITEBACK_WINDOW and _DONTNEED is not None:
            self._write_back()

    def _write_back(self) -> None:
        """Start writeback of the full window and drop the one before it from the page cache.

        `POSIX_FADV_DONTNEED` starts writeback of dirty pages and drops clean ones (pages still
        being written stay cached, which is harmless). Durability still comes from `commit`.
        """
        assert _DONTNEED is not None
        os.posix_fadvise(self._fd, self._drop, self._written - self._drop, _DONTNEED)
        self._drop, self._window = self._window, self._written

    def _flush(self) -> None:
        """Write the partial last block through the page cache (O_DIRECT needs whole blocks)."""
        if self._fill and self._block is not None:
            if self._direct:
                _set_direct(self._fd, on=False)
            _write_all(self._fd, self._block[: self._fill])
            self._written += self._fill
            self._fill = 0

    def commit(self) -> None:
        """fsync, link into place, fsync the directory. Raises `ObjectExists`, `StorageError`."""
        if self._closed or self._committed:
            raise StorageError(f"writer for {self._name} is closed")
        linked = False
        try:
            self._flush()
            os.fsync(self._fd)
            self._store._make_dirs(self._target)
            # link() rather than rename(): atomic like rename, but fails if the name exists.
            os.link(self._temp, self._target)
            linked = True
            fsync_dir(self._target.parent)
        except FileExistsError:
            self._discard()
            raise ObjectExists(f"object exists: {self._name}") from None
        except OSError as exc:
            if linked:
                with contextlib.suppress(OSError):
                    self._target.unlink()
            self._discard()
            raise os_error(f"cannot commit object {self._name}", exc) from exc
        self._committed = True
        self._discard()

    def _discard(self) -> None:
        """Close and remove the temp file (the committed object, if any, stays)."""
        if self._closed:
            return
        self._closed = True
        # Unlink while still holding the flock, so no cleaner ever sees an unlocked temp file.
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._block = None
