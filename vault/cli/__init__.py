"""The `tvault` command line (DESIGN.md "Public interface")."""

from __future__ import annotations

import os

import typer

from vault.cli import (
    access,
    admin,
    approvals,
    client,
    credentials,
    jobs,
    keys,
    ledger,
    search,
    verify,
)
from vault.cli.common import Commands

app = typer.Typer(
    name="tvault",
    help="testimony-vault: deposit, keep and retrieve testimonies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Commands,
)
app.command()(admin.init)
app.command()(admin.serve)
app.add_typer(admin.users, name="users")
app.add_typer(credentials.token_app, name="token")
app.add_typer(client.cases, name="cases")
app.command()(client.deposit)
app.command()(client.status)
app.command()(client.get)
app.command()(access.consent)
app.command()(access.hold)
app.add_typer(access.keys_app, name="keys")
app.add_typer(approvals.app, name="approvals")
app.command()(jobs.worker)
app.command("jobs")(jobs.jobs)
app.command()(jobs.ingest)

app.command()(search.search)
app.command()(search.reindex)
app.add_typer(ledger.app, name="ledger")
app.command()(verify.verify)
keys.register(keys_app=access.keys_app, users=admin.users, app=app)


def main() -> None:
    """Run the `tvault` command line.

    Every file the vault or its libraries create (SQLite's database, WAL and shared memory,
    tantivy's segments, objects, the keyring, downloads) is for the vault's own user only:
    mode 0600, directories 0700, whatever umask the shell had.
    """
    os.umask(0o077)
    app()


__all__ = ["app", "main"]
