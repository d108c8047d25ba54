"""`tvault approvals list|show|approve|deny`: the two-person rule from the command line.

Client commands: they talk to the API with the caller's own token, so the policy decides and
the ledger names who approved. `tvault keys shred`, `tvault hold --lift` and `tvault keys rotate
--retire` ask; a second custodian answers here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vault.cli.common import (
    DEFAULT_URL,
    ApprovalArgument,
    JsonOption,
    TokenOption,
    UrlOption,
    YesOption,
    api_client,
    call,
    confirm,
    emit,
    group,
)
from vault.domain import RETIRE_KEYS, SHRED

app = group("Two-person rule: approve or deny requests (custodians).", no_args_is_help=False)


def describe(row: dict[str, Any]) -> str:
    """One line for people: id, state, kind, subject, who asked, how many said yes."""
    yes = 1 + len(row["approvers"])
    return (
        f"{row['id']}\t{row['state']}\t{row['kind']}\t{row['subject']}\t"
        f"by {row['requested_by']}\t{yes}/{row['quorum']}"
    )


@app.command("list")
def approvals_list(
    state: Annotated[
        str | None, typer.Option("--state", help="pending, approved, done, failed or denied.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """List requests, newest first: id, state, kind, subject, requester, yes/quorum."""
    params = {"state": state} if state else None
    with api_client(url, token) as client:
        rows = call(client, "GET", "/v1/approvals", params=params)
    emit(rows, as_json, "\n".join(describe(r) for r in rows))


@app.command("show")
def approvals_show(
    approval: ApprovalArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one request with its payload, note and outcome."""
    with api_client(url, token) as client:
        row = call(client, "GET", f"/v1/approvals/{approval}")
    lines = [describe(row), f"payload: {row['payload']}"]
    if row["note"]:
        lines.append(f"note: {row['note']}")
    if row["denial_reason"]:
        lines.append(f"denied by {row['denied_by']}: {row['denial_reason']}")
    if row["outcome"] is not None:
        lines.append(f"outcome: {row['outcome']}")
    emit(row, as_json, "\n".join(lines))


@app.command("approve")
def approvals_approve(
    approval: ApprovalArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """Approve a request someone else made; the action runs once the quorum is reached.

    A shred or a key retirement cannot be undone: it shows what will be lost and asks for the
    item id (or the key versions) again, unless `--yes`; with no terminal and no `--yes` it
    exits 2 and approves nothing.
    """
    with api_client(url, token) as client:
        _confirm_loss(call(client, "GET", f"/v1/approvals/{approval}"), yes)
        row = call(client, "POST", f"/v1/approvals/{approval}/approve")
    done = f" ({row['outcome']})" if row["outcome"] else ""
    emit(row, as_json, f"{describe(row)}{done}")


def _confirm_loss(row: dict[str, Any], yes: bool) -> None:
    # Only what destroys data is asked about again; a lifted hold can be put back.
    if row["kind"] == SHRED:
        item = row["subject"]
        reason = row["payload"].get("reason", "?")
        confirm(
            item,
            f"approving {row['id']} crypto-shreds item {item} (reason: {reason}): its "
            "key is deleted and it can never be read again",
            yes,
        )
    elif row["kind"] == RETIRE_KEYS:
        versions = ",".join(str(v) for v in row["payload"].get("versions", []))
        confirm(
            versions,
            f"approving {row['id']} retires master key version(s) {versions}: "
            "they are deleted from the keyring for good",
            yes,
        )


@app.command("deny")
def approvals_deny(
    approval: ApprovalArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (sealed at rest).")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refuse a request (or withdraw your own): it ends, and nothing runs."""
    with api_client(url, token) as client:
        row = call(client, "POST", f"/v1/approvals/{approval}/deny", json={"reason": reason})
    emit(row, as_json, describe(row))
