"""`tvault worker` (admin), `tvault jobs` and `tvault ingest` (client): the ingest pipeline."""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli.common import (
    CHUNK,
    DEFAULT_URL,
    FAILURE,
    NOT_UTF8,
    USAGE,
    CaseOption,
    JsonOption,
    TokenOption,
    UrlOption,
    VaultOption,
    api_client,
    call,
    check_job_id,
    checked_language,
    emit,
    fail,
    idempotency_key,
    passphrase,
    problem,
    progress,
    scopes,
    send_deposit,
    settings_for,
    shown_name,
    vault_failures,
)
from vault.cli.resume import Record
from vault.headers import to_headers

if TYPE_CHECKING:
    import httpx


def worker(
    vault_dir: VaultOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Jobs run at once.")
    ] = 1,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Run only these stages (extract, index) [default: all]."),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            min=0,
            max=65535,
            help="Serve /healthz and /readyz on this port [default: off].",
        ),
    ] = None,
    health_host: Annotated[
        str, typer.Option("--health-host", help="Address of the health port.")
    ] = "127.0.0.1",
) -> None:
    """Run extraction and indexing workers until SIGTERM or Ctrl-C (jobs in hand finish)."""
    from vault import allocator
    from vault.compose import chosen_stages, working
    from vault.errors import BadField

    allocator.tune()  # vault/allocator.py
    try:
        stages = chosen_stages(tuple(kind or ()))
    except BadField as exc:
        fail(f"--{exc}", USAGE)
    settings = settings_for(vault_dir)
    secret = passphrase(settings, confirm=False, dev=False)
    with vault_failures(settings.keyring_path):
        built = working(
            settings,
            secret,
            stages,
            concurrency=concurrency,
            health=None if health_port is None else (health_host, health_port),
        )
    running, health = built.worker, built.health
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if not running.kinds:
            fail("no stage is registered")
        if health is not None:
            try:
                health.start()
            except OSError as exc:
                fail(f"--health-port: cannot listen on {health_host}:{health_port}: {exc.strerror}")
        running.start()
        try:
            while not stopping.wait(1.0):
                pass
        finally:
            running.stop()
    finally:
        if health is not None:
            health.stop()
        built.vault.close()


def _job_line(job: dict[str, Any]) -> str:
    reason = f"  {job['last_error']}" if job.get("last_error") else ""
    return (
        f"{job['id']}  {job['kind']:<8} {job['state']:<8} "
        f"{job['attempts']}/{job['max_attempts']}  item {job['item_id']}{reason}"
    )


def jobs(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed jobs.")] = False,
    retry: Annotated[
        str | None,
        typer.Option(
            "--retry", metavar="JOB", help="Queue failed JOB again.", callback=check_job_id
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List extraction and indexing jobs, or retry a failed one (custodians)."""
    with api_client(url, token) as client:
        if retry is not None:
            job = call(client, "POST", f"/v1/jobs/{retry}/retry")
            emit(job, as_json, _job_line(job))
            return
        params = {"state": "failed"} if failed else {}
        rows = call(client, "GET", "/v1/jobs", params=params)
    emit(rows, as_json, "\n".join(_job_line(j) for j in rows) or "no jobs")


def _files(directory: Path) -> list[Path]:
    # Regular files only, in a stable order; symbolic links are not followed out of DIR.
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in _chunks(path):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _deposit(
    client: httpx.Client, case: str, path: Path, params: dict[str, str], key: str
) -> dict[str, Any]:
    """Deposit one file under the idempotency `key`; return the vault's answer: the item
    (`id`, `duplicate_of`), or `{"duplicate_of": ID}` when the vault refused it as a duplicate
    (`params` asked for that). Raises `RuntimeError` with the reason."""
    import httpx

    size = path.stat().st_size
    # Metadata in Tvault-* headers, never the query string (proxies log URLs; vault.headers).
    fields = {**params, "title": path.name, "filename": path.name}
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(size),
        **to_headers(fields),
    }
    try:
        response = send_deposit(
            client, case, lambda: {"content": _chunks(path), "headers": headers}, key
        )
    except httpx.TransportError as exc:
        raise RuntimeError(f"cannot reach the vault: {type(exc).__name__}") from None
    if response.status_code == 409:
        refusal = response.json()
        if refusal.get("type") == "urn:tvault:problem:duplicate":
            return {"duplicate_of": refusal["duplicate_of"]}
    if response.is_error:
        raise RuntimeError(problem(response))
    answer: dict[str, Any] = response.json()
    return answer


def ingest(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, readable=True)
    ],
    case: CaseOption,
    consent: Annotated[
        list[str],
        typer.Option("--consent", help="Consent scopes; repeatable, or comma-separated."),
    ],
    kind: Annotated[str, typer.Option("--kind")] = "document",
    language: Annotated[str | None, typer.Option("--language")] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Tags, comma-separated.")] = None,
    allow_duplicates: Annotated[
        bool,
        typer.Option(
            "--allow-duplicates",
            help="Deposit files whose SHA-256 the case already has (else skipped).",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deposit every file under DIRECTORY into CASE; print what failed and why (exit 1 if any).

    A file whose SHA-256 an item of the case already has is skipped (the item is named) unless
    `--allow-duplicates`. Run the same command again after an interruption: it resumes, and no
    file is deposited twice (docs/usage.md, "Ingesting a folder").
    """
    files = _files(directory)
    if not files:
        fail(f"no files in {directory}", USAGE)
    granted = ",".join(scopes(consent))
    if not granted:
        fail("--consent: name at least one scope", USAGE)
    params = {"kind": kind, "consent": granted}
    language = checked_language(language)
    params.update({k: v for k, v in {"language": language, "tags": tags}.items() if v})
    if not allow_duplicates:
        params["duplicates"] = "refuse"
    record = Record.open(case, directory)
    deposited: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    earlier = 0
    seen: dict[str, int] = {}
    with api_client(url, token) as client, progress("files") as bar:
        task = bar.add_task("ingest", total=len(files))
        for path in files:
            name = str(path.relative_to(directory))
            bar.advance(task, 1)
            unreadable = shown_name(name)
            if unreadable is not None:
                failed.append({"file": unreadable, "reason": f"{NOT_UTF8}; rename it"})
                continue
            try:
                digest, size = _digest(path)
            except OSError as exc:
                failed.append({"file": name, "reason": exc.strerror or type(exc).__name__})
                continue
            if size == 0:
                failed.append({"file": name, "reason": "empty file"})
                continue
            # The n-th file of the folder with these bytes (vault.cli.resume).
            rank = seen[digest] = seen.get(digest, -1) + 1
            slot = f"{digest}:{rank}"
            stored = record.item(slot)
            if stored is not None:  # an earlier run of this command stored it
                deposited.append({"file": name, "id": stored, "earlier_run": True})
                earlier += 1
                continue
            first = record.item(f"{digest}:0") if rank else None
            if first is not None and not allow_duplicates:
                skipped.append({"file": name, "duplicate_of": first})
                continue
            try:
                answer = _deposit(client, case, path, params, record.key(slot, idempotency_key()))
            except RuntimeError as exc:
                record.forget(slot)
                failed.append({"file": name, "reason": str(exc)})
                continue
            if "id" not in answer:
                record.forget(slot)
                skipped.append({"file": name, "duplicate_of": answer["duplicate_of"]})
                continue
            record.stored(slot, answer["id"])
            deposited.append({"file": name, **answer})
    if not failed:
        record.remove()  # complete: a later run starts afresh
    lines = [
        f"deposited {len(deposited)} of {len(files)} files; {len(failed)} failed"
        + (f"; {len(skipped)} skipped as duplicates" if skipped else "")
        + (f"; {earlier} of the deposited by an earlier run" if earlier else "")
    ]
    lines += [f"  skipped: {s['file']}: same SHA-256 as item {s['duplicate_of']}" for s in skipped]
    lines += [f"  failed: {f['file']}: {f['reason']}" for f in failed]
    result = {"deposited": deposited, "skipped": skipped, "failed": failed}
    emit(result, as_json, "\n".join(lines))
    if failed:
        raise typer.Exit(FAILURE)
