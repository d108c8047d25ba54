"""`tvault consent` and `tvault hold`: what may be done with an item, over the API.

Every change is decided by the policy and recorded in the ledger under the caller's own account.
`hold --lift` asks for an approval (the two-person rule) and prints its id.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    ItemArgument,
    JsonOption,
    TokenOption,
    UrlOption,
    api_client,
    asked,
    call,
    emit,
    fail,
    scopes,
)


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
    with api_client(url, token) as client:
        if not changing:
            rows = call(client, "GET", f"/v1/items/{item}/consent")
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
        done = call(client, "POST", f"/v1/items/{item}/consent", json=body)
    emit(done, as_json, f"consent v{done['version']}: {','.join(done['scopes']) or 'none'}")


def hold(
    item: ItemArgument,
    lift: Annotated[
        bool,
        typer.Option("--lift", help="Ask to lift the hold instead (another custodian approves)."),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the item is held (sealed in the ledger).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put ITEM under legal hold (it cannot be shredded), or ask to `--lift` it (custodians;
    prints the approval id)."""
    with api_client(url, token) as client:
        if lift:
            done = call(client, "DELETE", f"/v1/items/{item}/hold")
        else:
            body = {"reason": reason} if reason is not None else None
            done = call(client, "PUT", f"/v1/items/{item}/hold", json=body)
    if done.get("approval"):
        asked(done["approval"], f"lifting the hold on {item}", as_json)
        return
    state = "under legal hold" if done["held"] else "not under legal hold"
    emit(done, as_json, f"{item} is {state}" + ("" if done["changed"] else " (unchanged)"))
