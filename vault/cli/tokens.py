"""`tvault token [issue] NAME`, `tvault token revoke|list`: bearer tokens for accounts.

`tvault token NAME` (short for `tvault token issue NAME`) is an admin command: it opens the vault
with the passphrase, and its ledger entry says so (actor `keyholder (offline)`). `token revoke`
and `token list` talk to the API with a custodian's token, so the ledger names the custodian.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from typer.core import TyperGroup

from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    JsonOption,
    TokenOption,
    UrlOption,
    VaultOption,
    api_client,
    call,
    check_token_id,
    emit,
    fail,
    group,
    open_local,
)


class _IssueByDefault(TyperGroup):
    """A group whose first argument, when not one of its commands, is an account to issue a
    token for: `tvault token NAME` stays what it always was (`tvault token issue NAME`)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


app = group(
    "Tokens: `tvault token NAME` issues one (offline); `revoke`, `list` use the API.",
    cls=_IssueByDefault,
)


@app.command("issue")
def token_issue(
    name: str,
    ttl: Annotated[
        int | None,
        typer.Option(
            "--ttl",
            help="Lifetime in seconds [default: TVAULT_TOKEN_TTL_SECONDS; at most "
            "TVAULT_TOKEN_MAX_TTL_SECONDS].",
        ),
    ] = None,
    vault_dir: VaultOption = None,
) -> None:
    """Print a token for the local account NAME (a ledger entry: who, for whom, id, expiry)."""
    from vault import credentials
    from vault.errors import BadField, VaultError

    vault = open_local(vault_dir)
    try:
        issued = credentials.issue(vault, name, ttl_seconds=ttl)
    except BadField as exc:
        fail(f"--{exc.detail}", USAGE)  # the lifetime: "--ttl: ... exceeds the maximum ..."
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()
    typer.echo(issued.token)


@app.command("revoke")
def token_revoke(
    token_id: Annotated[
        str,
        typer.Argument(metavar="JTI", help="The token's id (`jti`).", callback=check_token_id),
    ],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke the token JTI (custodians): refused from its next request on, on every server."""
    with api_client(url, token) as client:
        done: dict[str, Any] = call(client, "DELETE", f"/v1/tokens/{token_id}")
    state = "revoked" if done["changed"] else "was already revoked"
    emit(done, as_json, f"token {token_id} {state}")


@app.command("list")
def token_list(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the unexpired tokens of NAME: id, expiry, issuer, revoked (custodians)."""
    with api_client(url, token) as client:
        rows = call(client, "GET", f"/v1/users/{quote(name, safe='')}/tokens")
    lines = [
        f"{r['token_id']}\t{r['expires_at']}\t{r['issued_by']} ({r['via']})"
        + ("\trevoked" if r["revoked_at"] else "")
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines))
