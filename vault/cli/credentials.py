"""`tvault token [issue] NAME`, `tvault token revoke|list`, `tvault users disable|enable|role`.

`tvault token NAME` (short for `tvault token issue NAME`) and the `users` commands are admin
commands: they open the vault with the passphrase, and their ledger entries say so (actor
`keyholder (offline)`, `via: offline`). `token revoke` and `token list` talk to the API with a
custodian's token, so the ledger names the custodian.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from vault import credentials
from vault.accounts import OFFLINE_ACTOR, change_role, set_disabled
from vault.cli.admin import _open, users
from vault.cli.client import TokenOption, UrlOption, _call, _client
from vault.cli.common import DEFAULT_URL, USAGE, JsonOption, VaultOption, emit, fail
from vault.domain import ROLES
from vault.errors import BadField, VaultError


class _IssueByDefault(TyperGroup):
    """A group whose first argument, when not one of its commands, is an account to issue a
    token for: `tvault token NAME` stays what it always was (`tvault token issue NAME`)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


token_app = typer.Typer(
    cls=_IssueByDefault,
    help="Tokens: `tvault token NAME` issues one (offline); `revoke`, `list` use the API.",
    no_args_is_help=True,
)


@token_app.command("issue")
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
    vault = _open(vault_dir)
    try:
        issued = credentials.issue(vault, name, ttl_seconds=ttl)
    except BadField as exc:
        fail(f"--{exc.detail}", USAGE)  # the lifetime: "--ttl: ... exceeds the maximum ..."
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()
    typer.echo(issued.token)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="JTI", help="The token's id (`jti`).")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke the token JTI (custodians): refused from its next request on, on every server."""
    with _client(url, token) as client:
        done: dict[str, Any] = _call(client, "DELETE", f"/v1/tokens/{token_id}")
    state = "revoked" if done["changed"] else "was already revoked"
    emit(done, as_json, f"token {token_id} {state}")


@token_app.command("list")
def token_list(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the unexpired tokens of NAME: id, expiry, issuer, revoked (custodians)."""
    with _client(url, token) as client:
        rows = _call(client, "GET", f"/v1/users/{name}/tokens")
    lines = [
        f"{r['token_id']}\t{r['expires_at']}\t{r['issued_by']} ({r['via']})"
        + ("\trevoked" if r["revoked_at"] else "")
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines))


def _account_change(vault_dir: VaultOption, name: str, change: str, value: Any) -> bool:
    vault = _open(vault_dir)
    try:
        with vault.sessions.begin() as session:
            now = vault.clock()
            if change == "role":
                return change_role(session, name, value, now, actor=OFFLINE_ACTOR, via="offline")
            return set_disabled(session, name, value, now, actor=OFFLINE_ACTOR, via="offline")
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()


@users.command("disable")
def users_disable(name: str, vault_dir: VaultOption = None) -> None:
    """Disable NAME: every token of it is refused from its next request on (a ledger entry)."""
    changed = _account_change(vault_dir, name, "disabled", True)
    typer.echo(f"disabled {name}" if changed else f"{name} was already disabled")


@users.command("enable")
def users_enable(name: str, vault_dir: VaultOption = None) -> None:
    """Enable NAME again; tokens issued before it was disabled stay refused."""
    changed = _account_change(vault_dir, name, "disabled", False)
    typer.echo(f"enabled {name}" if changed else f"{name} was already enabled")


@users.command("role")
def users_role(
    name: str,
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    vault_dir: VaultOption = None,
) -> None:
    """Give NAME another role; tokens issued before are refused from then on."""
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}", USAGE)
    changed = _account_change(vault_dir, name, "role", role)
    typer.echo(f"{name} is now {role}" if changed else f"{name} already has the role {role}")
