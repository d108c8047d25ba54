"""The `tvault` command line (DESIGN.md "Public interface")."""

from __future__ import annotations

import os
import sys
from typing import Any

# httpx imports its own command line (click, pygments, rich: a third of tvault's start-up) when
# it is imported; the vault never runs it. None in sys.modules makes that import fail at once,
# and httpx falls back to a stub `main` (httpx/__init__.py catches the ImportError).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import typer  # noqa: E402 (after the line above)

from vault.cli import (  # noqa: E402
    admin,
    approvals,
    cases,
    consent,
    exports,
    items,
    jobs,
    keys,
    ledger,
    search,
    signing,
    tokens,
    users,
    verify,
    verify_export,
)
from vault.cli.common import Commands  # noqa: E402

_ROOT: dict[str, Any] = {
    "name": "tvault",
    "help": "testimony-vault: deposit, keep and retrieve testimonies.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,  # plain help: see vault.cli.common.group
    "cls": Commands,
}
app = typer.Typer(**_ROOT)
# One module per command group; the order here is the order `tvault --help` lists them.
app.command()(admin.init)
app.command()(admin.serve)
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="token")
app.add_typer(cases.app, name="cases")
app.command()(items.deposit)
app.command()(items.status)
app.command()(items.get)
app.command()(consent.consent)
app.command()(consent.hold)
app.add_typer(keys.app, name="keys")
app.add_typer(approvals.app, name="approvals")
app.add_typer(exports.app, name="export")
app.command()(jobs.worker)
app.command("jobs")(jobs.jobs)
app.command()(jobs.ingest)
app.command()(search.search)
app.command()(search.reindex)
app.add_typer(ledger.app, name="ledger")
app.command()(verify.verify)
app.command("verify-export")(verify_export.verify_export)
app.command()(signing.cosign)


def main() -> None:
    """Run the `tvault` command line.

    Every file the vault or its libraries create (SQLite's database, WAL and shared memory,
    tantivy's segments, objects, the keyring, downloads) is for the vault's own user only:
    mode 0600, directories 0700, whatever umask the shell had.
    """
    os.umask(0o077)
    named = sys.argv[1] if len(sys.argv) > 1 else ""
    (only(named) or app)()


def _typer_name(info: Any) -> str:
    return str(info.name or info.callback.__name__.replace("_", "-"))


def only(name: str) -> typer.Typer | None:
    """Return a `tvault` holding only the command or group `name` (None: no such one).

    typer builds every command's options from its signature before it runs one; building the
    one asked for alone takes a third off a client command's start-up (bench/startup.py). Its
    options, help and errors are those of the same command in `app`: the same objects.
    """
    single = typer.Typer(**_ROOT)
    # A callback keeps it a group: a lone command would otherwise become the program itself.
    single.callback()(_nothing)
    for command in app.registered_commands:
        if _typer_name(command) == name:
            single.registered_commands.append(command)
            return single
    for group in app.registered_groups:
        if group.name == name:
            single.registered_groups.append(group)
            return single
    return None


def _nothing() -> None:
    """testimony-vault: deposit, keep and retrieve testimonies."""


__all__ = ["app", "main", "only"]
