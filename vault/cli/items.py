"""`tvault deposit`, `tvault status`, `tvault get`: an item in and out, over the API."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli import signing
from vault.cli.common import (
    CHUNK,
    DEFAULT_URL,
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
    progress,
    refused,
    repr_digest,
    scopes,
    send_deposit,
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
    """Stream ITEM into `fd`; return the SHA-256 the server announced and that of the bytes
    received. Hashed as they arrive instead of reading the written file again (one pass over
    1 GiB, not two), and written as the socket gives them (`iter_raw` without a chunk size:
    re-chunking copies every byte once more; the vault sends no content coding)."""
    import hashlib

    import httpx

    digest = hashlib.sha256()
    try:
        with (
            client.stream("GET", f"/v1/items/{item}/content") as response,
            os.fdopen(fd, "wb", buffering=0) as out,
        ):
            if response.is_error:
                response.read()
                refused(response)
            expected = repr_digest(response.headers.get("repr-digest", ""))
            task = bar.add_task("get", total=int(response.headers.get("content-length", 0)))
            received = 0
            for piece in response.iter_raw():
                digest.update(piece)
                out.write(piece)
                received += len(piece)
                if received >= CHUNK:  # the bar is redrawn per MiB, not per piece
                    bar.advance(task, received)
                    received = 0
            bar.advance(task, received)
            os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        fail(f"download failed: {exc}")
    return expected, digest.hexdigest()
