"""`tvault verify-export FILE --identity KEY`: check an export offline; exit 1 on any failure.

Needs no vault directory and no network (DESIGN.md "Public interface": offline).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vault.cli.common import FAILURE, USAGE, JsonOption, emit, fail

if TYPE_CHECKING:
    from vault.export_verify import Report

_MAX_KEY_FILE = 64 * 1024  # an identity or key file is a few hundred bytes


def _read_small(path: Path, what: str) -> str:
    if path.stat().st_size > _MAX_KEY_FILE:
        fail(f"{what} {path} is too large to be a key", USAGE)
    return path.read_text(encoding="utf-8", errors="replace")


def verify_export(
    file: Annotated[
        Path,
        typer.Argument(help="The export file (age).", exists=True, dir_okay=False, readable=True),
    ],
    identity: Annotated[
        Path,
        typer.Option(
            "--identity",
            "-i",
            help="Your age identity file (AGE-SECRET-KEY-1...) or OpenSSH Ed25519 key.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="The vault's log verifier key (or a file holding it), obtained independently. "
            "Without it the key inside the bag is used, which proves less.",
        ),
    ] = None,
    previous_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--previous-checkpoint",
            help="A signed checkpoint you kept from an earlier export: the log must extend it.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    extract: Annotated[
        Path | None,
        typer.Option(
            "--extract",
            help="Also WRITE THE DECRYPTED BAG to this new directory and validate it with the "
            "bagit library. Without it nothing decrypted touches the disk.",
            file_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check an export with no vault and no network: decryption, the BagIt bag, every digest,
    every depositor signature, every inclusion proof, the checkpoint and the consistency proof."""
    key_text = _read_small(identity, "identity")
    vkey = None
    if log_key is not None:
        candidate = Path(log_key)
        vkey = (_read_small(candidate, "log key") if candidate.is_file() else log_key).strip()
    kept = None
    if previous_checkpoint is not None:
        kept = _read_small(previous_checkpoint, "checkpoint")
        if not kept.strip():
            # Named against the file given, not against the bag's consistency proof.
            fail(f"--previous-checkpoint {previous_checkpoint}: the file is empty", USAGE)
    if extract is not None:
        if extract.exists() and any(extract.iterdir()):
            fail(f"--extract {extract}: the directory is not empty", USAGE)
        extract.mkdir(parents=True, exist_ok=True)
    from vault.export_verify import verify_export as check

    with file.open("rb") as src:
        try:
            report = check(
                src,
                key_text,
                name=file.name,
                log_key=vkey,
                previous_checkpoint=kept,
                extract_to=extract,
            )
        except ValueError as exc:
            fail(str(exc), USAGE)
    emit(report.to_json(), as_json, _summary(report))
    if not report.ok:
        raise typer.Exit(FAILURE)


def _summary(report: Report) -> str:
    lines = [f"export: {report.file}" + (f" (bag {report.bag})" if report.bag else "")]
    if report.log_key_source:
        lines.append(f"log key: {report.log_key_source}")
    lines += [f"ok: {check}" for check in report.checks]
    if report.ok:
        lines.append("OK: no failures")
    else:
        lines.append(f"FAILED: {len(report.failures)} failure(s)")
        lines += [f"  {f.where}: {f.what}" for f in report.failures]
    return "\n".join(lines)
