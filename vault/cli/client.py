"""Client commands: they talk to the API (`--url`, `--token`) over httpx."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ingest.languages import canonical_language
from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    CaseArgument,
    CaseOption,
    ItemArgument,
    JsonOption,
    emit,
    fail,
    scopes,
)
from vault.headers import to_headers

cases = typer.Typer(help="Cases.", no_args_is_help=True)

UrlOption = Annotated[str, typer.Option("--url", envvar="TVAULT_URL", help="API address.")]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="TVAULT_TOKEN", help="Bearer token.")
]
CHUNK = 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, read=600.0)


def connect(url: str, token: str) -> httpx.Client:
    """Return an HTTP client for the API at `url` that sends `token` (the transport seam)."""
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)


def _client(url: str, token: str | None) -> httpx.Client:
    if not token:
        fail("no token: pass --token or set TVAULT_TOKEN (`tvault token NAME` prints one)", USAGE)
    return connect(url, token)


def _refused(response: httpx.Response) -> NoReturn:
    try:
        detail = response.json().get("detail", response.reason_phrase)
    except ValueError:
        detail = response.reason_phrase
    fail(f"{response.status_code}: {detail}")


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the vault: {exc}")
    if response.is_error:
        _refused(response)
    return response.json() if response.content else None


def _progress() -> Progress:
    # On stderr, and only on a terminal: stdout carries the result alone, so
    # ITEM=$(tvault deposit ...) gets the id and nothing else.
    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@cases.command("create")
def cases_create(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Create a case named NAME; print its id."""
    with _client(url, token) as client:
        case = _call(client, "POST", "/v1/cases", json={"name": name})
    emit(case, as_json, case["id"])


@cases.command("list")
def cases_list(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the cases you may see."""
    with _client(url, token) as client:
        rows = _call(client, "GET", "/v1/cases")
    emit(rows, as_json, "\n".join(f"{c['id']}\t{c['name']}" for c in rows))


@cases.command("grant")
def cases_grant(
    case: CaseArgument,
    user: str,
    role: Annotated[str, typer.Option("--role", help="therapist, lawyer, advocate, commission")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Grant USER a role on CASE (custodians)."""
    with _client(url, token) as client:
        _call(client, "POST", f"/v1/cases/{case}/grants", json={"user": user, "role": role})
    typer.echo(f"granted {role} on {case} to {user}")


def _chunks(path: Path, progress: Progress) -> Iterator[bytes]:
    task = progress.add_task("deposit", total=path.stat().st_size)
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            progress.advance(task, len(chunk))
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
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deposit FILE into a case, streamed; print the item id and SHA-256."""
    granted = ",".join(scopes(consent))
    if not granted:
        fail("--consent: name at least one scope", USAGE)
    language = checked_language(language)
    # Metadata in Tvault-* headers, never the query string (proxies log URLs; vault.headers).
    structural = {"kind": kind, "consent": granted, "language": language, "tags": tags}
    sealed = {"title": title or file.name, "filename": file.name}
    size = file.stat().st_size
    headers = {"Content-Length": str(size)}
    with _client(url, token) as client, _progress() as progress:
        if sign_key is not None:
            from vault.cli import keys as signing  # here: it imports this module

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
        if notes is None:
            body: dict[str, Any] = {"content": _chunks(file, progress)}
            headers |= {"Content-Type": "application/octet-stream"}
            headers |= to_headers({**structural, **sealed})
        else:
            # Notes may be long (20,000 characters): a form field of a multipart body rather
            # than a header that proxies and the server's header limit would refuse.
            del headers["Content-Length"]
            fields = {**structural, **sealed, "notes": notes}
            body = {
                "data": {k: v for k, v in fields.items() if v is not None},
                "files": {
                    "file": (file.name, _Counted(file, progress), "application/octet-stream")
                },
            }
        item = _call(client, "POST", f"/v1/cases/{case}/items", headers=headers, **body)
    emit(item, as_json, f"{item['id']}  sha256:{item['sha256']}")


def checked_language(language: str | None) -> str | None:
    """Return `language` in canonical form, or exit with a usage error if it is not a known
    BCP 47 tag (the list the server checks too: ingest.languages)."""
    if language is None:
        return None
    canonical = canonical_language(language)
    if canonical is None:
        fail("--language: not a known BCP 47 tag (such as es, quc, es-419, sr-Latn)", USAGE)
    return canonical


class _Counted:
    """A file read for a multipart body, advancing the progress bar as it goes."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self._file = path.open("rb")
        self._progress = progress
        self._task = progress.add_task("deposit", total=path.stat().st_size)

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._progress.advance(self._task, len(chunk))
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
    with _client(url, token) as client:
        data = _call(client, "GET", f"/v1/items/{item}")
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
    with _client(url, token) as client, _progress() as progress:
        # Written beside the target and renamed only once the digest matches, so FILE is either
        # the verified original or absent.
        fd, temp = tempfile.mkstemp(prefix=".tvault-", dir=target.parent)
        try:
            expected = _download(client, item, fd, progress)
            actual = _sha256(Path(temp))
            if actual != expected:
                fail(f"SHA-256 mismatch: expected {expected}, got {actual}; nothing written")
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    typer.echo(f"{target}  sha256:{expected}")


def _download(client: httpx.Client, item: str, fd: int, progress: Progress) -> str:
    try:
        with (
            client.stream("GET", f"/v1/items/{item}/content") as response,
            os.fdopen(fd, "wb") as out,
        ):
            if response.is_error:
                response.read()
                _refused(response)
            expected = _digest_header(response.headers.get("repr-digest", ""))
            task = progress.add_task("get", total=int(response.headers.get("content-length", 0)))
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                progress.advance(task, len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        fail(f"download failed: {exc}")
    return expected


def _digest_header(value: str) -> str:
    # RFC 9530 Repr-Digest: sha-256=:<base64>:
    for member in value.split(","):
        name, _, raw = member.strip().partition("=")
        if name == "sha-256" and raw.startswith(":") and raw.endswith(":"):
            return base64.b64decode(raw[1:-1]).hex()
    fail("the server sent no SHA-256 (Repr-Digest)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
