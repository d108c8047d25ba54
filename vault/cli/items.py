"""`tvault deposit`, `tvault status`, `tvault get`: an item in and out, over the API."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli import signing
from vault.cli.common import (
    CHUNK,
    DEFAULT_URL,
    NOT_UTF8,
    READ_TIMEOUT_SECONDS,
    USAGE,
    CaseOption,
    ItemArgument,
    JsonOption,
    Ticker,
    TokenOption,
    UrlOption,
    api_client,
    call,
    checked_language,
    emit,
    fail,
    idempotency_key,
    network_address,
    progress,
    refused,
    repr_digest,
    scopes,
    send_deposit,
    shown_name,
)
from vault.headers import to_headers

if TYPE_CHECKING:
    import httpx


def _chunks(path: Path, bar: Ticker) -> Iterator[bytes]:
    task = bar.add_task("deposit", total=path.stat().st_size)
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            bar.advance(task, len(chunk))
            yield chunk


def deposit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    case: CaseOption,
    consent: Annotated[
        list[str],
        typer.Option("--consent", help="Consent scopes; repeatable, or comma-separated."),
    ],
    kind: Annotated[str, typer.Option("--kind")] = "testimony",
    title: Annotated[str | None, typer.Option("--title", help="[default: file name]")] = None,
    language: Annotated[str | None, typer.Option("--language")] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Tags, comma-separated.")] = None,
    notes: Annotated[str | None, typer.Option("--notes", help="Free-text notes (sealed).")] = None,
    sign_key: Annotated[
        Path | None,
        typer.Option(
            "--sign-key",
            exists=True,
            dir_okay=False,
            help="Sign a statement of the deposit with this key (raw Ed25519 or OpenSSH).",
        ),
    ] = None,
    refuse_duplicates: Annotated[
        bool,
        typer.Option(
            "--refuse-duplicates",
            help="Store nothing if an item of the case has the same SHA-256 (exit 1).",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deposit FILE into a case, streamed; print the item id and SHA-256.

    A lost connection is retried by itself under the same idempotency key, so the file is
    stored once. If an item of the case you may see has the same SHA-256, the file is stored
    all the same and stderr names that item (unless `--refuse-duplicates`).
    """
    granted = ",".join(scopes(consent))
    if not granted:
        fail("--consent: name at least one scope", USAGE)
    unreadable = shown_name(file.name)
    if unreadable is not None:
        fail(f"{unreadable}: {NOT_UTF8}; rename the file and deposit it again", USAGE)
    language = checked_language(language)
    # Metadata in Tvault-* headers, never the query string (proxies log URLs; vault.headers).
    structural = {
        "kind": kind,
        "consent": granted,
        "language": language,
        "tags": tags,
        "duplicates": "refuse" if refuse_duplicates else None,
    }
    sealed = {"title": title or file.name, "filename": file.name}
    size = file.stat().st_size
    headers = {"Content-Length": str(size)}
    with api_client(url, token) as client, progress("bytes") as bar:
        if sign_key is not None:
            # One pass for the statement's SHA-256 and size, then the upload (docs/signatures.md).
            sha256, size = signing.digest_of(file)
            headers["Content-Length"] = str(size)
            headers |= signing.signed_headers(
                client,
                sign_key,
                case=case,
                kind=kind,
                filename=file.name,
                consent=granted,
                sha256=sha256,
                size=size,
            )
        fields = {**structural, **sealed}

        def request() -> dict[str, Any]:
            if notes is None:
                raw = headers | {"Content-Type": "application/octet-stream"}
                return {"content": _chunks(file, bar), "headers": raw | to_headers(fields)}
            # Notes may be long (20,000 characters): a form field of a multipart body rather
            # than a header that proxies and the server's header limit would refuse.
            form = {k: v for k, v in {**fields, "notes": notes}.items() if v is not None}
            upload = (file.name, _Counted(file, bar), "application/octet-stream")
            signed = {k: v for k, v in headers.items() if k != "Content-Length"}
            return {"data": form, "files": {"file": upload}, "headers": signed}

        import httpx

        try:
            response = send_deposit(client, case, request, idempotency_key())
        except httpx.TransportError as exc:
            fail(f"cannot reach the vault: {exc}")
        if response.is_error:
            refused(response)
        item = response.json()
    emit(item, as_json, f"{item['id']}  sha256:{item['sha256']}")
    if item.get("duplicate_of"):
        typer.echo(
            f"tvault: note: item {item['duplicate_of']} of this case has the same SHA-256; "
            "this deposit is a second copy (its consent is managed on its own)",
            err=True,
        )


class _Counted:
    """A file read for a multipart body, advancing the progress bar as it goes."""

    def __init__(self, path: Path, bar: Ticker) -> None:
        self._file = path.open("rb")
        self._bar = bar
        self._task = bar.add_task("deposit", total=path.stat().st_size)

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._bar.advance(self._task, len(chunk))
        if not chunk:
            self._file.close()
        return chunk

    def fileno(self) -> int:
        # httpx sizes the body from it, so the request carries a Content-Length.
        return self._file.fileno()


def status(
    item: ItemArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an item's metadata and ingest state."""
    with api_client(url, token) as client:
        data = call(client, "GET", f"/v1/items/{item}")
    lines = [
        f"{key}: {_shown(value)}" for key, value in data.items() if key not in ("steps", "ocr")
    ]
    steps = data.get("steps") or []
    if steps:
        lines.append("steps: " + ", ".join(f"{s['step']} {s['state']}" for s in steps))
    report = data.get("ocr")
    if report:
        lines.append(
            f"text: from OCR ({report['engine']} {report['version']}, {report['languages']}, "
            f"mean confidence {report['confidence']}%, {report['pages']} page(s))"
        )
    emit(data, as_json, "\n".join(lines))


def _shown(value: Any) -> str:
    # For people: no Python `None` or list brackets; "-" where there is nothing.
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def get(
    item: ItemArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.", dir_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Download ITEM to FILE; the SHA-256 is checked before FILE appears. An existing FILE is
    left untouched (exit 2) unless `--force` is given."""
    target = output.resolve()
    if not target.parent.is_dir():
        fail(f"-o: no directory {target.parent}", USAGE)
    if target.exists() and not force:
        fail(f"-o: {target} exists; pass --force to replace it", USAGE)
    with api_client(url, token) as client, progress("bytes") as bar:
        # Written beside the target and renamed only once the digest matches, so FILE is either
        # the verified original or absent.
        fd, temp = tempfile.mkstemp(prefix=".tvault-", dir=target.parent)
        try:
            expected, actual = _download(client, item, fd, bar)
            if actual != expected:
                fail(f"SHA-256 mismatch: expected {expected}, got {actual}; nothing written")
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    typer.echo(f"{target}  sha256:{expected}")


def _download(client: httpx.Client, item: str, fd: int, bar: Ticker) -> tuple[str, str]:
    """Stream ITEM into `fd` (closed on return); return the SHA-256 the server announced and
    that of the bytes received. Exits 1 with one line when the download or the write fails.

    The socket is read on this thread while a second one hashes and writes what arrived, so
    the client's three costs (HTTP parsing, SHA-256, the copy into the page cache) overlap
    instead of adding up: hashlib and `os.write` let go of the GIL on large buffers. The bytes
    are hashed as they arrive, not read again from the file (one pass over 1 GiB, not two), and
    taken as the socket gives them (`iter_raw` without a chunk size: re-chunking copies every
    byte once more; the vault sends no content coding). bench/download.py measures it."""
    import httpx

    address = network_address(client)
    if address is not None and not _proxied(address[0]):
        return _download_from_socket(*address, item, fd, bar)
    writer = _Writer(fd)
    received_all = False
    try:
        with client.stream("GET", f"/v1/items/{item}/content") as response:
            if response.is_error:
                response.read()
                refused(response)
            expected = repr_digest(response.headers.get("repr-digest", ""))
            task = bar.add_task("get", total=int(response.headers.get("content-length", 0)))
            writer.start()
            received = 0
            for piece in response.iter_raw():
                if writer.error is not None:
                    break  # nothing more can be kept: stop reading
                writer.pieces.put((piece, len(piece)))
                received += len(piece)
                if received >= CHUNK:  # the bar is redrawn per MiB, not per piece
                    bar.advance(task, received)
                    received = 0
            bar.advance(task, received)
        received_all = True
    except httpx.HTTPError as exc:
        fail(f"download failed: {exc}")
    finally:
        writer.finish(sync=received_all)
    if writer.error is not None:
        reason = getattr(writer.error, "strerror", None) or writer.error
        fail(f"cannot write the download: {reason}; nothing written")
    return expected, writer.hexdigest()


def _proxied(url: str) -> bool:
    """Say whether a proxy from the environment applies to `url` (httpx would use it)."""
    import urllib.parse
    import urllib.request

    host = urllib.parse.urlsplit(url).hostname or ""
    return bool(urllib.request.getproxies()) and not urllib.request.proxy_bypass(host)


def _download_from_socket(url: str, token: str, item: str, fd: int, bar: Ticker) -> tuple[str, str]:
    """`_download` over a connection of the standard library's own, for a client `connect` made.

    httpx hands the body over in the socket's 64 KiB reads, each passed through its HTTP/1.1
    parser's buffer: about 1.1 s of CPU per GiB here, more than SHA-256 (0.6 s). `readinto` a
    1 MiB buffer reads the body straight from the socket into memory the writing thread then
    hashes and writes, and gives it back (about 0.35 s per GiB; bench/RESULTS.md). The request
    is the one `connect`'s client would send: same address, token, timeouts and certificate
    checks (a system-verified context for https)."""
    import http.client
    import ssl
    import urllib.parse

    import httpx

    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=READ_TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=READ_TIMEOUT_SECONDS)
    path = f"{parts.path.rstrip('/')}/v1/items/{item}/content"
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(_Writer.BUFFERS):
        free.put(bytearray(_Writer.BUFFER))
    writer = _Writer(fd, recycle=free)
    received_all = False
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status >= 400:
            body = response.read()
            refused(httpx.Response(response.status, headers=response.getheaders(), content=body))
        expected = repr_digest(response.getheader("repr-digest") or "")
        length = int(response.getheader("content-length") or 0)
        task = bar.add_task("get", total=length)
        writer.start()
        received = 0
        while writer.error is None:  # after a failed write nothing more can be kept
            buffer = free.get()
            count = response.readinto(buffer)
            if not count:
                break
            writer.pieces.put((buffer, count))
            received += count
            bar.advance(task, count)
        if writer.error is None and received < length:
            # `readinto` ends quietly at a closed connection; the digest would catch it too.
            raise http.client.IncompleteRead(b"", length - received)
        received_all = writer.error is None
    except (OSError, http.client.HTTPException) as exc:
        fail(f"download failed: {_reason(exc)}")
    finally:
        connection.close()
        writer.finish(sync=received_all)
    if writer.error is not None:
        reason = getattr(writer.error, "strerror", None) or writer.error
        fail(f"cannot write the download: {reason}; nothing written")
    return expected, writer.hexdigest()


def _reason(exc: BaseException) -> str:
    """Say in a few words why a download over `http.client` failed (never its bytes)."""
    import http.client

    if isinstance(exc, TimeoutError):
        return "the server stopped sending (timed out)"
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection closed {exc.expected} bytes before the end of the body"
    return str(exc) or type(exc).__name__


_FADVISE = hasattr(os, "posix_fadvise")  # not on macOS or Windows


class _Writer:
    """Hash and write, on a thread of its own, the pieces a download puts in `pieces`: each a
    buffer and how many of its first bytes to take. A `bytearray` is handed back to `recycle`
    once written (the reading thread fills it again)."""

    # Pieces are the socket's reads (up to 64 KiB through httpx): at most ~4 MiB wait in memory.
    QUEUED = 64
    # Buffers of the direct read (`_download_from_socket`): 4 MiB in all (larger ones measured
    # no faster).
    BUFFERS = 4
    BUFFER = 1024 * 1024
    # Every so many bytes written, the kernel is told to start writing them out and that they
    # will not be read again (POSIX_FADV_DONTNEED): the disk works during the download rather
    # than all in the final fsync, and the pages are reused instead of a GiB of fresh page
    # cache being filled (3x the write speed measured here; bench/RESULTS.md).
    WRITE_BEHIND = 8 * 1024 * 1024

    def __init__(self, fd: int, recycle: queue.Queue[bytearray] | None = None) -> None:
        import hashlib

        self.pieces: queue.Queue[tuple[bytes | bytearray, int] | None] = queue.Queue(self.QUEUED)
        self.error: Exception | None = None
        self._fd = fd
        self._recycle = recycle
        self._written = self._advised = 0
        self._digest = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="tvault-get-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self, *, sync: bool) -> None:
        """Wait for every queued piece to be written; with `sync`, fsync (the file is then on
        disk, not in the page cache alone); close the file."""
        if self._thread.is_alive():
            self.pieces.put(None)
            self._thread.join()
        try:
            if sync and self.error is None:
                os.fsync(self._fd)
        except OSError as exc:
            self.error = exc
        finally:
            os.close(self._fd)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def _run(self) -> None:
        # After a failed write the queue is still drained (and buffers handed back), so the
        # reading thread never blocks; it sees `error` and stops.
        while (entry := self.pieces.get()) is not None:
            buffer, count = entry
            try:
                if self.error is None:
                    self._write(memoryview(buffer)[:count])
            except Exception as exc:  # reported by the reading thread, as one line
                self.error = exc
            finally:
                if self._recycle is not None and isinstance(buffer, bytearray):
                    self._recycle.put(buffer)

    def _write(self, view: memoryview) -> None:
        self._digest.update(view)
        size = len(view)
        while view:
            view = view[os.write(self._fd, view) :]
        self._written += size
        if self._written - self._advised >= self.WRITE_BEHIND and _FADVISE:
            os.posix_fadvise(
                self._fd, self._advised, self._written - self._advised, os.POSIX_FADV_DONTNEED
            )
            self._advised = self._written
