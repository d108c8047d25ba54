"""`tvault verify [--fast]`: check everything the vault holds; exit 1 on any failure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vault.cli.common import FAILURE, JsonOption, VaultOption, emit, open_local

if TYPE_CHECKING:
    from rich.progress import TaskID

    from vault.verify import Report


def verify(
    vault_dir: VaultOption = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Compare ciphertext digests instead of decrypting.")
    ] = False,
    trusted: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-checkpoint",
            help="A signed checkpoint you kept (repeatable): the ledger must still extend it.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-check every object, signed statement, the ledger (chain, MACs, tree) and checkpoint."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vault.verify import verify as verify_vault

    pinned = [path.read_text(encoding="utf-8", errors="replace") for path in trusted or []]
    vault = open_local(vault_dir)
    try:
        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def tick(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            report = verify_vault(vault, fast=fast, progress=tick, trusted=pinned)
    finally:
        vault.close()
    emit(report.to_json(), as_json, _summary(report))
    if not report.ok:
        raise typer.Exit(FAILURE)


def _summary(report: Report) -> str:
    lines = [
        f"items: {report.items} checked ({report.shredded} shredded)",
        f"ledger entries: {report.entries}",
        f"checkpoints: {report.checkpoints}",
        f"signatures: {report.signatures}",
        *[f"note: {n}" for n in report.notes],
    ]
    if report.ok:
        lines.append("OK: no failures")
    else:
        lines.append(f"FAILED: {len(report.failures)} failure(s)")
        lines += [
            f"  {f.subject}: {f.kind}" + (f" ({f.detail})" if f.detail else "")
            for f in report.failures
        ]
    return "\n".join(lines)
