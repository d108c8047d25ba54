"""`ObjectStore` on MinIO or any S3 server, through the `minio` client; object lock optional.

Streaming up: minio's `put_object(length=-1, part_size=...)` pulls from a file-like object,
while the vault pushes (`writer.write`). `S3ObjectWriter` joins the two with a bounded queue
and one upload thread, so memory stays near three parts (`part_size`) whatever the object size.
If the writer is left without `commit`, the thread's next read raises, and minio aborts the
multipart upload it started (or never sends the single PUT of a small object). The bucket should
still carry a lifecycle rule that aborts incomplete multipart uploads after a day, for the case
where the process dies mid-upload (docs/deploy.md).

No overwrite: S3 has no reliable "create only" for us (minio-py 7.2.20 sends `If-None-Match`
as user metadata, and servers ignore it on versioned buckets, which object-lock buckets are).
The writer checks the name when it starts and again just before it completes the upload. Names
are 128-bit random, so a collision is a bug, and on a versioned bucket even then the earlier
version is kept, not lost.

Object lock (DESIGN.md): objects are written without retention; `lock` sets retention
(`retention_days`, GOVERNANCE or COMPLIANCE) once the deposit committed, so a failed deposit's
object can still be deleted. The bucket must have object lock enabled and **no default
retention**, or every failed deposit would leave an undeletable object. `delete` removes every
version of the name (on a versioned bucket a plain DELETE only adds a delete marker and keeps
the ciphertext), and a version under retention makes the server refuse: `ObjectLocked`.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, cast

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import MinioException, S3Error, ServerError
from minio.retention import Retention

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
)

MIB = 1024 * 1024
# S3 allows at most 10,000 parts: 16 MiB parts reach 156 GiB, far above a 4 GB video.
DEFAULT_PART_SIZE = 16 * MIB
_MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
_QUEUE_CHUNKS = 16
_POLL_SECONDS = 0.2
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"})
# AWS and moto answer 403 AccessDenied for a version under retention; MinIO 400 InvalidRequest
# ("Object is WORM protected"). Either is confirmed as a lock by reading the retention back.
_MAYBE_LOCKED = frozenset({"AccessDenied", "InvalidRequest", "ObjectLocked"})
# Out of room: MinIO's drives past their free-space threshold, or a bucket quota (MinIO, Ceph).
_FULL = frozenset({"XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "QuotaExceeded"})
# The server is there but cannot serve now (RFC 9110 503 answers, MinIO without quorum).
_BUSY = frozenset(
    {
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
        "XMinioStorageWriteQuorum",
        "XMinioStorageReadQuorum",
    }
)
_FULL_MEMORY_S = 60.0
_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    MinioException,
    urllib3.exceptions.HTTPError,
    OSError,
)


def _code(exc: BaseException) -> str | None:
    return cast(str, exc.code) if isinstance(exc, S3Error) else None


def _parse_time(value: object) -> datetime | None:
    """Parse an ISO 8601 date of any sub-second precision (S3 servers differ), or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # keep at most microseconds: Python refuses nanoseconds
        head, _, tail = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, tail))
        text = f"{head}.{digits[:6]:0<6}{tail[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _Abandoned(Exception):
    """Raised inside minio's upload loop so that it aborts the multipart upload."""


class _Eof:
    pass


_EOF = _Eof()


class S3ObjectStore:
    """An `ObjectStore` in `bucket` on the S3 server at `endpoint` ("host:port").

    `ca_file` names a PEM file of CA certificates to trust instead of the system's (a private
    CA, or a test server's self-signed certificate). Raises `ValueError` on inconsistent
    arguments; no request is made before the first operation.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = True,
        object_lock: bool = False,
        retention_days: int = 0,
        retention_mode: str = GOVERNANCE,
        region: str | None = None,
        ca_file: Path | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        mode = retention_mode.upper()
        if mode not in (GOVERNANCE, COMPLIANCE):
            raise ValueError(f"retention mode must be GOVERNANCE or COMPLIANCE, not {mode!r}")
        if object_lock and retention_days < 1:
            raise ValueError("object lock needs a retention of at least one day")
        if part_size < _MIN_PART_SIZE:
            raise ValueError(f"part size must be at least {_MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.object_lock = object_lock
        self.retention_days = retention_days
        self.retention_mode = mode
        self.part_size = part_size
        # When a write was last refused for want of room (time.monotonic()), for readiness: S3
        # has no way to ask for free space, so the last answer stands for `_FULL_MEMORY_S`.
        self._full_since: float | None = None
        # Our own pool (minio's defaults) so that `ca_file` can be trusted and `close` frees it.
        timeout = 300.0
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=15.0, read=timeout),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(ca_file) if ca_file is not None else certifi.where(),
            retries=urllib3.Retry(
                total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=self._http,
        )

    def check_bucket(self) -> None:
        """Check the bucket before use: it exists and, with `object_lock`, has object lock
        enabled and no default retention. The composition root calls it once at start-up.

        Raises `StorageError` naming the problem: without object lock `lock` would fail after a
        deposit committed; with a default retention every failed deposit would leave an object
        that nobody can delete.
        """
        try:
            if not self.client.bucket_exists(self.bucket):
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist; create it (with object lock: "
                    f"mc mb --with-lock ALIAS/{self.bucket}) or set TVAULT_S3_BUCKET to an "
                    "existing one"
                )
            if not self.object_lock:
                return
            config = self.client.get_object_lock_config(self.bucket)
        except _TRANSPORT_ERRORS as exc:
            if _code(exc) == "ObjectLockConfigurationNotFoundError":
                raise StorageError(
                    f"bucket {self.bucket!r} has no object lock; create it with object lock "
                    "(mc mb --with-lock) or set TVAULT_S3_OBJECT_LOCK=false"
                ) from exc
            raise self._error("check bucket", self.bucket, exc) from exc
        if config.mode is not None:
            raise StorageError(
                f"bucket {self.bucket!r} has a default retention ({config.mode}, "
                f"{config.duration} {config.duration_unit}): a failed deposit would leave an "
                "object nobody can delete; clear it (mc retention clear --default)"
            )

    # -- the port ------------------------------------------------------------------------

    def writer(self, name: str) -> S3ObjectWriter:
        """Start a streamed upload of `name`. Raises `ObjectExists` if the name is taken."""
        if self.exists(name):
            raise ObjectExists(f"object exists: {name}")
        return S3ObjectWriter(self, name)

    def open(self, name: str) -> BinaryIO:
        """Open `name` for a streamed read. Raises `ObjectNotFound`, `StorageError`."""
        check_name(name)
        try:
            response = self.client.get_object(self.bucket, name)
        except _TRANSPORT_ERRORS as exc:
            raise self._error("read", name, exc) from exc
        return io.BufferedReader(_ResponseReader(response, name), buffer_size=MIB)

    def exists(self, name: str) -> bool:
        """Return whether `name` is a committed object. Raises `StorageError`."""
        try:
            self._stat(name)
        except ObjectNotFound:
            return False
        return True

    def size(self, name: str) -> int:
        """Return the size of `name` in bytes. Raises `ObjectNotFound`, `StorageError`."""
        return int(self._stat(name).size)

    def _stat(self, name: str) -> Any:
        check_name(name)
        try:
            return self.client.stat_object(self.bucket, name)
        except _TRANSPORT_ERRORS as exc:
            raise self._error("stat", name, exc) from exc

    def delete(self, name: str) -> None:
        """Remove every version of `name`. Raises `ObjectNotFound`, `ObjectLocked`."""
        check_name(name)
        try:
            versions = [
                item
                for item in self.client.list_objects(
                    self.bucket, prefix=name, recursive=True, include_version=True
                )
                if item.object_name == name
            ]
        except _TRANSPORT_ERRORS as exc:
            raise self._error("list versions of", name, exc) from exc
        if not any(not item.is_delete_marker for item in versions):
            raise ObjectNotFound(f"no such object: {name}")
        # Data first: if retention refuses, the delete markers (harmless) are all that is kept.
        versions.sort(key=lambda item: bool(item.is_delete_marker))
        for item in versions:
            version = item.version_id if item.version_id not in (None, "") else None
            try:
                self.client.remove_object(self.bucket, name, version_id=version)
            except _TRANSPORT_ERRORS as exc:
                if _code(exc) in _MAYBE_LOCKED and self._under_retention(name, version):
                    raise ObjectLocked(f"object is locked: {name}") from exc
                raise self._error("delete", name, exc) from exc

    def _under_retention(self, name: str, version: str | None) -> bool:
        # Read from the HEAD response headers rather than GetObjectRetention: minio 7.2.20
        # raises on retention dates with nanoseconds (Ceph RGW), and moto's answer does not parse.
        try:
            headers = self.client.stat_object(self.bucket, name, version_id=version).metadata or {}
        except _TRANSPORT_ERRORS:
            return False
        if str(headers.get("x-amz-object-lock-legal-hold", "")).upper() == "ON":
            return True
        until = _parse_time(headers.get("x-amz-object-lock-retain-until-date"))
        return until is not None and until > datetime.now(UTC)

    def lock(self, name: str) -> None:
        """Set retention on `name` (no-op but the existence check without object lock).

        Raises `ObjectNotFound`, `StorageError`.
        """
        self._stat(name)
        if not self.object_lock:
            return
        # Whole seconds: minio's parser chokes on fractional dates it may later read back.
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=self.retention_days)
        try:
            self.client.set_object_retention(
                self.bucket, name, Retention(self.retention_mode, until)
            )
        except _TRANSPORT_ERRORS as exc:
            raise self._error("lock", name, exc) from exc

    def names(self, prefix: str = "") -> Iterator[str]:
        """Yield the names of committed objects that start with `prefix`."""
        for info in self.entries(prefix):
            yield info.name

    def entries(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield name, size and modification time of objects whose name starts with `prefix`.

        Objects whose names the vault would not have made (a shared bucket) are skipped.
        """
        check_prefix(prefix)
        try:
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                name = cast(str, item.object_name)
                try:
                    check_name(name)
                except ValueError:
                    continue
                modified = cast(datetime, item.last_modified)
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                yield ObjectInfo(name, int(item.size), modified)
        except _TRANSPORT_ERRORS as exc:
            raise self._error("list", prefix, exc) from exc

    def adopt(self, name: str, source: Path) -> None:
        """Upload the finished file `source` as `name` through a writer, then remove `source`
        (`copy_in`). Raises `ObjectExists`, `StorageError`."""
        copy_in(self, name, source)

    def put_locked(self, name: str, data: bytes) -> None:
        """Write `data` as `name`, then lock it. Raises `ObjectExists`, `StorageError`."""
        # Written, then locked in a second request (which carries its own Content-MD5), rather
        # than with retention headers on the PUT, which some servers accept only with an MD5.
        if self.exists(name):
            raise ObjectExists(f"object exists: {name}")
        try:
            self.client.put_object(self.bucket, name, io.BytesIO(data), len(data))
        except _TRANSPORT_ERRORS as exc:
            raise self._error("write", name, exc) from exc
        try:
            self.lock(name)
        except StorageError:
            with contextlib.suppress(StorageError):
                self.delete(name)  # so that the caller can retry under the same name
            raise

    def check_writable(self) -> None:
        """Raise `StoreFull` if a write was refused as full less than `_FULL_MEMORY_S` ago (S3
        cannot be asked for its free space), `StoreUnavailable` if the bucket cannot be
        reached."""
        full_since = self._full_since
        if full_since is not None and time.monotonic() - full_since < _FULL_MEMORY_S:
            raise StoreFull(f"bucket {self.bucket!r} refused a write as full")
        try:
            self.client.bucket_exists(self.bucket)
        except _TRANSPORT_ERRORS as exc:
            raise self._error("reach", self.bucket, exc) from exc

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._http.clear()

    # -- helpers -------------------------------------------------------------------------

    def _error(self, action: str, name: str, exc: BaseException) -> StorageError:
        code = _code(exc)
        if code in _NOT_FOUND:
            return ObjectNotFound(f"no such object: {name}")
        message = f"cannot {action} {name!r} in bucket {self.bucket!r}: {exc}"
        if code in _FULL:
            self._full_since = time.monotonic()
            return StoreFull(message)
        if code in _BUSY or isinstance(exc, ServerError | urllib3.exceptions.HTTPError | OSError):
            # No S3 answer at all (refused, reset, timed out): the server is unreachable.
            return StoreUnavailable(message, "unreachable")
        return StorageError(message)


class _ResponseReader(io.RawIOBase):
    """A raw stream over a minio GET response, releasing the connection on close."""

    def __init__(self, response: Any, name: str) -> None:
        self._response = response
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._response.read(len(buffer))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageError(f"cannot read object {self._name}: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._response.close()
                self._response.release_conn()
        super().close()


class S3ObjectWriter:
    """A streamed upload to an `S3ObjectStore`; see `ObjectWriter`.

    `write` hands chunks to an upload thread through a bounded queue (it blocks while the
    queue is full, so a slow server slows the writer instead of filling memory).
    """

    def __init__(self, store: S3ObjectStore, name: str) -> None:
        self._store = store
        self._name = name
        self._queue: queue.Queue[bytes | _Eof] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._abandoned = threading.Event()
        self._error: BaseException | None = None
        self._committed = False
        self._closed = False
        # Chunks received but not yet handed to minio. A list, not a bytearray: a bytearray
        # keeps its capacity after `del buf[:n]`, which would pin a whole part in memory.
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_size = 0
        self._eof = False
        self._thread = threading.Thread(target=self._upload, name="s3-upload", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()

    # -- the caller's side ---------------------------------------------------------------

    def write(self, data: bytes) -> int:
        """Queue `data` for upload. Raises `StorageError` if the upload failed or is closed."""
        if self._closed or self._committed:
            raise StorageError(f"writer for {self._name} is closed")
        if not self._thread.is_alive():  # failed already: stop the caller streaming on
            raise StorageError(f"upload of {self._name} failed: {self._error}") from self._error
        if data:
            self._send(bytes(data))
        return len(data)

    def commit(self) -> None:
        """Finish the upload. Raises `ObjectExists` if the name was taken meanwhile,
        `StorageError` if the upload failed; nothing is left behind then."""
        if self._closed or self._committed:
            raise StorageError(f"writer for {self._name} is closed")
        try:
            if self._store.exists(self._name):
                raise ObjectExists(f"object exists: {self._name}")
            self._send(_EOF)
            self._thread.join()
        except BaseException:
            self._finish()
            raise
        if self._error is not None:
            error = self._error
            self._finish()
            if isinstance(error, StorageError):
                raise error
            raise self._store._error("upload", self._name, error) from error
        self._committed = True
        self._store._full_since = None  # it took an object again
        self._finish()

    def _send(self, item: bytes | _Eof) -> None:
        while True:
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    error = self._error
                    raise StorageError(f"upload of {self._name} failed: {error}") from error

    def _finish(self) -> None:
        """Stop the upload thread; unless committed, it aborts the upload first."""
        if self._closed:
            return
        self._closed = True
        if not self._committed:
            self._abandoned.set()
        self._thread.join()

    # -- the upload thread's side --------------------------------------------------------

    def _upload(self) -> None:
        try:
            self._store.client.put_object(
                self._store.bucket,
                self._name,
                cast(BinaryIO, self),  # minio only calls `read`
                length=-1,
                part_size=self._store.part_size,
                num_parallel_uploads=1,  # parallel parts would each hold a part in memory
            )
        except BaseException as exc:  # handed to the caller's thread by `commit`
            self._error = exc

    def read(self, size: int = -1) -> bytes:
        """Return up to `size` bytes (exactly `size` unless the end came); minio calls it."""
        while not self._eof and (size < 0 or self._pending_size < size):
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._abandoned.is_set():
                    raise _Abandoned from None
                continue
            if self._abandoned.is_set():
                raise _Abandoned
            if isinstance(item, _Eof):
                self._eof = True
                break
            self._pending.append(item)
            self._pending_size += len(item)
        wanted = self._pending_size if size < 0 else min(size, self._pending_size)
        taken: list[bytes] = []
        got = 0
        while got < wanted:
            chunk = self._pending.popleft()
            if got + len(chunk) > wanted:
                keep = wanted - got
                self._pending.appendleft(chunk[keep:])
                chunk = chunk[:keep]
            taken.append(chunk)
            got += len(chunk)
        self._pending_size -= got
        return b"".join(taken)
