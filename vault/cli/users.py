"""`tvault users ...`: local accounts and the signing keys registered to them.

`add`, `list`, `disable`, `enable`, `role`, `passwd`, `link` and `totp-off` (web sign-in,
docs/web.md)
are admin commands: they open the vault with the
passphrase, and their ledger entries say so (actor `keyholder (offline)`, `via: offline`).
`key-add`, `keys` and `recipients add|list|remove` (a commission's age or ssh-ed25519 keys,
docs/exports.md) talk to the API with a custodian's token, so the ledger names the custodian.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from vault.cli import common
from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    JsonOption,
    TokenOption,
    UrlOption,
    VaultOption,
    api_client,
    call,
    emit,
    fail,
    group,
    open_local,
)
from vault.domain import ROLES

app = group("Local accounts.")
recipients = group("Recipient keys of commission accounts: what their exports are encrypted to.")
app.add_typer(recipients, name="recipients")


@app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    vault_dir: VaultOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a local account (a ledger entry, made offline with the passphrase)."""
    from vault.accounts import add_user
    from vault.errors import VaultError

    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}", USAGE)
    vault = open_local(vault_dir)
    try:
        with vault.sessions.begin() as session:
            user = add_user(session, name, role, vault.clock())
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()
    emit({"name": user.name, "role": user.role}, as_json, f"added {user.name} ({user.role})")


@app.command("list")
def users_list(vault_dir: VaultOption = None, as_json: JsonOption = False) -> None:
    """List local accounts."""
    from vault.accounts import list_users

    vault = open_local(vault_dir)
    try:
        with vault.sessions() as session:
            rows = [
                {"name": u.name, "role": u.role, "disabled": u.disabled}
                for u in list_users(session)
            ]
    finally:
        vault.close()
    lines = [f"{r['name']}\t{r['role']}" + ("\tdisabled" if r["disabled"] else "") for r in rows]
    emit(rows, as_json, "\n".join(lines))


def _account_change(vault_dir: VaultOption, name: str, change: str, value: Any) -> bool:
    from vault.accounts import OFFLINE_ACTOR, change_role, set_disabled
    from vault.errors import VaultError

    vault = open_local(vault_dir)
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


@app.command("disable")
def users_disable(name: str, vault_dir: VaultOption = None) -> None:
    """Disable NAME: every token of it is refused from its next request on (a ledger entry)."""
    changed = _account_change(vault_dir, name, "disabled", True)
    typer.echo(f"disabled {name}" if changed else f"{name} was already disabled")


@app.command("enable")
def users_enable(name: str, vault_dir: VaultOption = None) -> None:
    """Enable NAME again; tokens issued before it was disabled stay refused."""
    changed = _account_change(vault_dir, name, "disabled", False)
    typer.echo(f"enabled {name}" if changed else f"{name} was already enabled")


@app.command("role")
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


def _new_password() -> str:
    # Asked twice on a terminal; one line from stdin otherwise (scripts: `echo ... | tvault ...`).
    if common.terminal():
        value: str = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        return value
    line = sys.stdin.readline()
    if not line:
        fail("no password: type it on a terminal, or give one line on standard input", USAGE)
    return line.rstrip("\r\n")


@app.command("passwd")
def users_passwd(name: str, vault_dir: VaultOption = None) -> None:
    """Set NAME's web sign-in password (Argon2id; a ledger entry, made offline).

    Asks twice on a terminal; reads one line from standard input otherwise.
    """
    from vault import passwords
    from vault.accounts import OFFLINE, OFFLINE_ACTOR
    from vault.errors import VaultError

    password = _new_password()
    try:
        passwords.check_new_password(password)
    except VaultError as exc:
        fail(exc.detail, USAGE)
    vault = open_local(vault_dir)
    try:
        passwords.set_password(vault, name, password, actor=OFFLINE_ACTOR, via=OFFLINE)
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()
    typer.echo(f"password set for {name}")


@app.command("link")
def users_link(
    name: str,
    url: Annotated[
        str, typer.Option("--url", envvar="TVAULT_URL", help="The vault's address in a browser.")
    ] = DEFAULT_URL,
    vault_dir: VaultOption = None,
) -> None:
    """Print a one-time link for NAME to choose a password (**whoever holds it can**).

    Earlier unused links of NAME stop working; the link expires after
    TVAULT_PASSWORD_LINK_TTL_SECONDS. A ledger entry, made offline.
    """
    from vault import passwords
    from vault.accounts import OFFLINE, OFFLINE_ACTOR
    from vault.errors import VaultError

    vault = open_local(vault_dir)
    try:
        _, secret, expires = passwords.issue_link(vault, name, actor=OFFLINE_ACTOR, via=OFFLINE)
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()
    typer.echo(f"{url.rstrip('/')}/set-password/{secret}")
    typer.echo(f"valid once, until {expires.isoformat(timespec='minutes')}", err=True)


@app.command("totp-off")
def users_totp_off(name: str, vault_dir: VaultOption = None) -> None:
    """Turn off NAME's TOTP second factor (a lost authenticator): it is set up again at the
    next sign-in where TVAULT_REQUIRE_2FA asks for one. A ledger entry, made offline."""
    from vault import passwords
    from vault.accounts import OFFLINE, OFFLINE_ACTOR
    from vault.errors import VaultError

    vault = open_local(vault_dir)
    try:
        was_on = passwords.disable_totp(vault, name, actor=OFFLINE_ACTOR, via=OFFLINE)
    except VaultError as exc:
        fail(exc.detail)
    finally:
        vault.close()
    typer.echo(f"second factor of {name} turned off" if was_on else f"{name} had no second factor")


@app.command("key-add")
def users_key_add(
    name: str,
    key_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register the public key in KEYFILE (ed25519:... or an OpenSSH .pub) to NAME (custodians)."""
    with api_client(url, token) as client:
        done = call(
            client,
            "POST",
            f"/v1/users/{quote(name, safe='')}/keys",
            json={"public_key": key_file.read_text()},
        )
    emit(done, as_json, f"registered {done['key_id']} to {name}")


@app.command("keys")
def users_keys(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the keys registered to NAME (custodians)."""
    with api_client(url, token) as client:
        rows = call(client, "GET", f"/v1/users/{quote(name, safe='')}/keys")
    emit(rows, as_json, "\n".join(f"{r['key_id']}\t{r['added_by']}\t{r['added_at']}" for r in rows))


@recipients.command("add")
def recipients_add(
    name: str,
    key: Annotated[str, typer.Argument(help="age1... or 'ssh-ed25519 AAAA...' (or @FILE).")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a recipient key to the commission account NAME (custodians)."""
    text = key
    if key.startswith("@"):
        try:
            text = Path(key[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{key}: cannot read the key file ({exc.__class__.__name__})", USAGE)
    with api_client(url, token) as client:
        row = call(
            client, "POST", f"/v1/users/{quote(name, safe='')}/recipients", json={"key": text}
        )
    emit(row, as_json, f"registered {row['key_type']} recipient {row['key_id']} to {name}")


@recipients.command("list")
def recipients_list(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the recipient keys of NAME."""
    with api_client(url, token) as client:
        rows = call(client, "GET", f"/v1/users/{quote(name, safe='')}/recipients")
    emit(
        rows,
        as_json,
        "\n".join(
            f"{r['key_id']}\t{r['key_type']}\t{r['recipient']}\t{r['added_by']}" for r in rows
        ),
    )


@recipients.command("remove")
def recipients_remove(
    name: str,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="As `list` shows it.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Remove a recipient key of NAME (custodians); exports built before keep theirs."""
    with api_client(url, token) as client:
        call(
            client,
            "DELETE",
            f"/v1/users/{quote(name, safe='')}/recipients/{quote(key_id, safe='')}",
        )
    typer.echo(f"removed {key_id} from {name}")
