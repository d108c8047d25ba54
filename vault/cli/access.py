"""Client commands of access and consent: `cases revoke`, `consent`, `keys shred`, `hold`.

`keys shred` and `hold --lift` ask for an approval (the two-person rule) and print its id.

They talk to the API like the other client commands, so every change is decided by the policy
and recorded in the ledger under the caller's own account (a custodian's token for shredding).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from vault.cli.approvals import asked
from vault.cli.client import TokenOption, UrlOption, _call, _client, cases
from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    CaseArgument,
    ItemArgument,
    JsonOption,
    YesOption,
    confirm,
    emit,
    fail,
    scopes,
)

keys_app = typer.Typer(help="Key management.", no_args_is_help=True)


@cases.command("revoke")
def cases_revoke(
    case: CaseArgument,
    user: str,
    role: Annotated[
        str | None, typer.Option("--role", help="Only this role [default: every role].")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke USER's roles on CASE (custodians); effective on USER's next request."""
    params = {"role": role} if role else None
    with _client(url, token) as client:
        done = _call(
            client, "DELETE", f"/v1/cases/{case}/grants/{quote(user, safe='')}", params=params
        )
    emit(done, as_json, f"revoked {', '.join(done['roles'])} on {case} from {user}")


@cases.command("grants")
def cases_grants(
    case: CaseArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the roles granted on CASE (custodians)."""
    with _client(url, token) as client:
        rows = _call(client, "GET", f"/v1/cases/{case}/grants")
    emit(rows, as_json, "\n".join(f"{r['user']}\t{r['role']}\t{r['granted_by']}" for r in rows))


def consent(
    item: ItemArgument,
    grant: Annotated[
        list[str] | None,
        typer.Option("--grant", help="Scopes to grant; repeatable, or comma-separated."),
    ] = None,
    withdraw: Annotated[
        list[str] | None,
        typer.Option("--withdraw", help="Scopes to withdraw; repeatable, or comma-separated."),
    ] = None,
    form: Annotated[
        Path | None,
        typer.Option(
            "--form",
            help="The consent form the survivor signed (sealed at rest): the change's basis.",
            exists=True,
        ),
    ] = None,
    depositor_confirms: Annotated[
        bool,
        typer.Option(
            "--depositor-confirms",
            help="As the depositing therapist, confirm the survivor asked for it (the basis).",
        ),
    ] = False,
    note: Annotated[
        str | None,
        typer.Option("--note", help="Free text kept with the change, sealed in the ledger."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change ITEM's consent scopes on a basis (--form or --depositor-confirms); without
    options, print its consent history."""
    granted, withdrawn = scopes(grant), scopes(withdraw)
    both = sorted(set(granted) & set(withdrawn))
    if both:
        fail(f"granted and withdrawn at once: {', '.join(both)}", USAGE)
    changing = bool(granted or withdrawn) or form is not None
    if not changing and (depositor_confirms or note is not None):
        fail("say what changes: --grant, --withdraw or --form", USAGE)
    if changing and (form is None) == (not depositor_confirms):
        fail("give the change's basis: --form FILE or --depositor-confirms (one)", USAGE)
    with _client(url, token) as client:
        if not changing:
            rows = _call(client, "GET", f"/v1/items/{item}/consent")
            lines = [
                f"v{r['version']}\t{','.join(r['scopes']) or '-'}\t{r['recorded_at']}"
                f"\t{r['recorded_by']}"
                for r in rows
            ]
            emit(rows, as_json, "\n".join(lines))
            return
        body: dict[str, object] = {"grant": granted, "withdraw": withdrawn}
        body["basis"] = "depositor_confirmation" if depositor_confirms else "consent_form"
        if form is not None:
            if form.stat().st_size > 16 * 1024 * 1024:
                fail("--form: at most 16 MiB", USAGE)
            body["form_base64"] = base64.b64encode(form.read_bytes()).decode("ascii")
        if note is not None:
            body["note"] = note
        done = _call(client, "POST", f"/v1/items/{item}/consent", json=body)
    emit(done, as_json, f"consent v{done['version']}: {','.join(done['scopes']) or 'none'}")


@keys_app.command("shred")
def keys_shred(
    item: ItemArgument,
    reason: Annotated[
        str,
        typer.Option(
            "--reason", help="consent_withdrawn, court_order, duplicate, or other (with --note)."
        ),
    ],
    note: Annotated[str | None, typer.Option("--note", help="Why, in words (sealed).")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """Ask to crypto-shred ITEM (custodians); print the approval id. Another custodian approves
    (`tvault approvals approve ID`); then its key is deleted and it can never be read again.
    Asks for ITEM to be typed again unless `--yes`; with no terminal and no `--yes` it exits 2
    and asks nothing of the vault."""
    confirm(
        item,
        f"once approved, item {item} is crypto-shredded: its key is deleted and it "
        "can never be read again",
        yes,
    )
    body = {"reason": reason, "note": note}
    with _client(url, token) as client:
        done = _call(client, "POST", f"/v1/items/{item}/shred", json=body)
    asked(done, f"shredding {item}", as_json)


def hold(
    item: ItemArgument,
    lift: Annotated[
        bool,
        typer.Option("--lift", help="Ask to lift the hold instead (another custodian approves)."),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put ITEM under legal hold (it cannot be shredded), or ask to `--lift` it (custodians;
    prints the approval id)."""
    with _client(url, token) as client:
        done = _call(client, "DELETE" if lift else "PUT", f"/v1/items/{item}/hold")
    if done.get("approval"):
        asked(done["approval"], f"lifting the hold on {item}", as_json)
        return
    state = "under legal hold" if done["held"] else "not under legal hold"
    emit(done, as_json, f"{item} is {state}" + ("" if done["changed"] else " (unchanged)"))
