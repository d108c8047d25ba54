"""`tvault verify [--fast]`: check everything the vault holds; exit 1 on any failure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli.common import (
    DEFAULT_URL,
    FAILURE,
    JsonOption,
    TokenOption,
    UrlOption,
    VaultOption,
    api_client,
    call,
    emit,
    open_local,
)

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
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Auditors: check the ledger and checkpoints through the API (--url, --token), "
            "without the passphrase; objects are not checked.",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    trusted_key: Annotated[
        str | None, typer.Option("--key", help="With --remote: the log's verifier key you trust.")
    ] = None,
) -> None:
    """Re-check every object, signed statement, the ledger (chain, MACs, tree) and checkpoint.

    With `--remote`, an auditor checks through the API, without the passphrase: every entry's
    form, the hash chain, each signed checkpoint's signature and its tree root recomputed from
    the entries (and `--trusted-checkpoint` notes). The MACs and the objects need the keyring:
    full verification stays with the custodians.
    """
    pinned = [path.read_text(encoding="utf-8", errors="replace") for path in trusted or []]
    if remote:
        failures, checked = _verify_remote(url, token, trusted_key, pinned)
        summary = [f"ledger entries: {checked[0]}", f"checkpoints: {checked[1]}"]
        summary += ["OK: no failures"] if not failures else [f"FAILED: {len(failures)} failure(s)"]
        summary += [f"  {f}" for f in failures]
        data = {"entries": checked[0], "checkpoints": checked[1], "failures": failures}
        emit(data, as_json, "\n".join(summary))
        if failures:
            raise typer.Exit(FAILURE)
        return
    # Imported here, not above: `--remote` runs on an auditor's machine and must start fast.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vault.verify import verify as verify_vault

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


def _verify_remote(
    url: str, token: str | None, trusted_key: str | None, pinned: list[str]
) -> tuple[list[str], tuple[int, int]]:
    """Check the ledger through the API; return the failures and (entries, checkpoints) seen."""
    import rfc8785

    import keys
    from vault.ledger import note
    from vault.ledger.entry import parse
    from vault.ledger.errors import LedgerError
    from vault.ledger.tree import MerkleTree

    with api_client(url, token) as client:
        vkey = trusted_key or call(client, "GET", "/v1/ledger/key")["verifier_key"]
        documents: list[dict[str, Any]] = []
        while page := call(
            client, "GET", "/v1/ledger/entries", params={"start": len(documents), "limit": 1000}
        ):
            documents += page
        listed = call(client, "GET", "/v1/ledger/checkpoints", params={"limit": 1000})
        notes = [
            call(client, "GET", "/v1/ledger/checkpoint", params={"size": row["size"]})["note"]
            for row in listed
        ]
    failures: list[str] = []
    leaves: list[bytes] = []
    prev = bytes(32)  # the chain's genesis hash (`vault.ledger.tables.GENESIS`)
    for position, document in enumerate(documents):
        try:
            # Entries are RFC 8785 JSON: the object gives back the very bytes that were hashed.
            entry = parse(rfc8785.dumps(document))
        except (LedgerError, rfc8785.CanonicalizationError) as exc:
            failures.append(f"entry {position}: {exc}")
            break
        if entry.seq != position or entry.prev_hash != prev:
            failures.append(f"entry {position}: the hash chain is broken")
            break
        prev = entry.entry_hash
        leaves.append(entry.leaf_hash)
    tree = MerkleTree(leaves)
    for text in notes + pinned:
        try:
            signed = note.parse_checkpoint(note.open_note(text, vkey, keys.verify_ed25519))
        except (LedgerError, ValueError) as exc:
            failures.append(f"a checkpoint does not verify against the log key: {exc}")
            continue
        if signed.size > len(leaves):
            failures.append(f"checkpoint {signed.size}: more entries than the ledger holds")
        elif tree.root(signed.size) != signed.root:
            failures.append(f"checkpoint {signed.size}: its root does not match the entries")
    return failures, (len(leaves), len(notes) + len(pinned))
