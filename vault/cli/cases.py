"""`tvault cases create|list|grant|revoke|grants|hold`: cases, who may work on them, and a
legal hold on every item of one, over the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from vault.cli.common import (
    DEFAULT_URL,
    CaseArgument,
    JsonOption,
    TokenOption,
    UrlOption,
    api_client,
    call,
    emit,
    group,
)

app = group("Cases.")


@app.command("create")
def cases_create(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Create a case named NAME; print its id."""
    with api_client(url, token) as client:
        case = call(client, "POST", "/v1/cases", json={"name": name})
    emit(case, as_json, case["id"])


@app.command("list")
def cases_list(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the cases you may see."""
    with api_client(url, token) as client:
        rows = call(client, "GET", "/v1/cases")
    emit(rows, as_json, "\n".join(f"{c['id']}\t{c['name']}" for c in rows))


@app.command("grant")
def cases_grant(
    case: CaseArgument,
    user: str,
    role: Annotated[str, typer.Option("--role", help="therapist, lawyer, advocate, commission")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Grant USER a role on CASE (custodians)."""
    with api_client(url, token) as client:
        call(client, "POST", f"/v1/cases/{case}/grants", json={"user": user, "role": role})
    typer.echo(f"granted {role} on {case} to {user}")


@app.command("revoke")
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
    with api_client(url, token) as client:
        done = call(
            client, "DELETE", f"/v1/cases/{case}/grants/{quote(user, safe='')}", params=params
        )
    emit(done, as_json, f"revoked {', '.join(done['roles'])} on {case} from {user}")


@app.command("grants")
def cases_grants(
    case: CaseArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the roles granted on CASE (custodians)."""
    with api_client(url, token) as client:
        rows = call(client, "GET", f"/v1/cases/{case}/grants")
    emit(rows, as_json, "\n".join(f"{r['user']}\t{r['role']}\t{r['granted_by']}" for r in rows))


@app.command("hold")
def cases_hold(
    case: CaseArgument,
    reason: Annotated[
        str, typer.Option("--reason", help="Why the items are held (sealed in the ledger).")
    ],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put every item CASE has now under legal hold (custodians). Items deposited into CASE
    later are not held: hold them with `tvault hold`, or run this again."""
    with api_client(url, token) as client:
        done = call(client, "POST", f"/v1/cases/{case}/holds", json={"reason": reason})
    emit(
        done,
        as_json,
        f"held {len(done['held'])} item(s) of {case} now; {done['already']} held already; "
        f"{done['shredded']} shredded, left alone",
    )
