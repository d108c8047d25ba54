"""`tvault export request|list|status|approve|deny|download|rebuild` and
exports to commissions from the command line (`tvault users recipients` registers the keys).

Client commands: they talk to the API with the caller's own token. A download goes to
`FILE.part` first and resumes from it with an HTTP Range when run again; FILE appears only once
the whole file's SHA-256 matches the one the vault sent (it is age ciphertext: nothing readable
touches the disk).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli.common import (
    CHUNK,
    DEFAULT_URL,
    USAGE,
    JsonOption,
    TokenOption,
    UrlOption,
    api_client,
    call,
    check_case_id,
    emit,
    fail,
    group,
    progress,
    refused,
    repr_digest,
    scopes,
    sha256_of,
)
from vault.ids import ID_SHAPE

if TYPE_CHECKING:
    import httpx

app = group("Exports to truth commissions.")


def _check_export_id(value: str) -> str:
    # Before any URL is built: a stray "/", "?" or "#" would send the request elsewhere.
    if not ID_SHAPE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not an export id (26 letters a-z and 2-7)")
    return value


ExportArgument = Annotated[
    str, typer.Argument(metavar="ID", help="Export id.", callback=_check_export_id)
]


def describe(row: dict[str, Any]) -> str:
    """One line for people: id, state, case, commission, items, size, expiry or reason."""
    items = row["items"] if row["items"] is not None else "-"
    tail = row["reason"] or (f"expires {row['expires_at']}" if row["expires_at"] else "")
    return (
        f"{row['id']}\t{row['state']}\tcase {row['case_id']}\tfor {row['commission']}\t"
        f"items {items}\t{row['size'] or '-'} bytes\t{tail}".rstrip()
    )


def _preview(preview: dict[str, Any] | None) -> list[str]:
    if not preview:
        return []
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(preview["by_kind"].items())) or "-"
    return [
        f"would hold: {preview['items']} item(s), {preview['bytes']} bytes ({kinds})",
        f"consent: {preview['consented']} with truth_commission, "
        f"{preview['not_consented']} without (left out)",
        f"redacted: {preview['redacted']}; left out with no redacted rendition: "
        f"{preview['no_rendition']}; shredded: {preview['shredded']}",
    ]


@app.command("request")
def export_request(
    case: Annotated[str, typer.Argument(metavar="CASE", callback=check_case_id)],
    purpose: Annotated[str, typer.Option("--purpose", help="Why (sealed at rest).")],
    legal_basis: Annotated[
        str, typer.Option("--legal-basis", help="The mandate or law (sealed at rest).")
    ],
    commission: Annotated[
        str | None,
        typer.Option("--commission", help="The commission account (custodians; default: you)."),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="Only items matching this search (sealed).")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these kinds; repeatable or commas.")
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Deposited on or after (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Deposited on or before (YYYY-MM-DD).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for an export of CASE; a custodian other than you approves it. Prints its id."""
    body: dict[str, Any] = {
        "case_id": case,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "commission": commission,
        "query": query,
        "kinds": scopes(kind),
        "date_from": _day("--from", date_from),
        "date_to": _day("--to", date_to),
    }
    with api_client(url, token) as client:
        row = call(client, "POST", "/v1/exports", json=body)
    if not as_json:
        for line in _preview(row["preview"]):
            typer.echo(line, err=True)
        typer.echo(f"waits for a custodian's approval: tvault export approve {row['id']}", err=True)
    emit(row, as_json, row["id"])


def _day(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        fail(f"{option}: not a date (YYYY-MM-DD)", USAGE)


@app.command("list")
def export_list(
    state: Annotated[
        str | None, typer.Option("--state", help="Only exports in this state.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List exports you may see, newest first."""
    params = {"state": state} if state else None
    with api_client(url, token) as client:
        rows = call(client, "GET", "/v1/exports", params=params)
    emit(rows, as_json, "\n".join(describe(r) for r in rows))


@app.command("status")
def export_status(
    export: ExportArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one export: its state, purpose, legal basis, and while it waits, a preview."""
    with api_client(url, token) as client:
        row = call(client, "GET", f"/v1/exports/{export}")
    lines = [describe(row), f"purpose: {row['purpose']}", f"legal basis: {row['legal_basis']}"]
    if row["query"]:
        lines.append(f"query: {row['query']}")
    lines += _preview(row["preview"])
    if row["sha256"]:
        lines.append(f"sha256 of the sealed file: {row['sha256']}")
    emit(row, as_json, "\n".join(lines))


@app.command("approve")
def export_approve(
    export: ExportArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve an export someone else asked for (custodians); it is then built."""
    with api_client(url, token) as client:
        row = call(client, "POST", f"/v1/exports/{export}/approve")
    emit(row, as_json, describe(row))


@app.command("deny")
def export_deny(
    export: ExportArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (sealed at rest).")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refuse an export (custodians); nothing is built."""
    with api_client(url, token) as client:
        row = call(client, "POST", f"/v1/exports/{export}/deny", json={"reason": reason})
    emit(row, as_json, describe(row))


@app.command("rebuild")
def export_rebuild(
    export: ExportArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask again for a revoked, expired, failed or denied export (a new approval is needed)."""
    with api_client(url, token) as client:
        row = call(client, "POST", f"/v1/exports/{export}/rebuild")
    emit(row, as_json, row["id"])


@app.command("download")
def export_download(
    export: ExportArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.", dir_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Download an export (the commission it is for) to FILE, resuming FILE.part if a
    previous download broke off; FILE appears once the SHA-256 of the whole file matches."""
    target = output.resolve()
    if not target.parent.is_dir():
        fail(f"-o: no directory {target.parent}", USAGE)
    if target.exists() and not force:
        fail(f"-o: {target} exists; pass --force to replace it", USAGE)
    part = target.with_name(target.name + ".part")
    with api_client(url, token) as client:
        expected = _fetch(client, export, part)
    actual = sha256_of(part)
    if actual != expected:
        part.unlink()
        fail(f"SHA-256 mismatch: expected {expected}, got {actual}; the partial file is removed")
    os.replace(part, target)
    typer.echo(f"{target}  sha256:{expected}")


def _fetch(client: httpx.Client, export: str, part: Path) -> str:
    import httpx

    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", f"/v1/exports/{export}/download", headers=headers) as response:
            if response.status_code == 416:
                # The partial file is as long as the export, or longer: start again.
                response.read()
                part.unlink()
                return _fetch(client, export, part)
            if response.is_error:
                response.read()
                refused(response)
            expected = repr_digest(response.headers.get("repr-digest", ""))
            resumed = response.status_code == 206
            total = int(response.headers.get("content-length", 0)) + (have if resumed else 0)
            with part.open("ab" if resumed else "wb") as out, progress("bytes") as bar:
                task = bar.add_task("export", total=total, completed=have if resumed else 0)
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    bar.advance(task, len(chunk))
                out.flush()
                os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        fail(f"download broke off ({exc}); run the same command again to resume")
    return expected
