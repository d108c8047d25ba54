"""`tvault ledger checkpoint|checkpoints|entries|proof|key`: the custody ledger, over the API.

`proof` checks what the server sends before printing it: the checkpoint's Ed25519 signature
against the log key (give a key you trust with `--key`, or the server's own is fetched), and
the RFC 9162 inclusion or consistency proof against the signed root. The server sends an entry
only to an account allowed to read it; anyone else gets the proof from the entry's leaf hash.
Exit codes: 0 verified, 1 a failure (not found, refused, or a proof that does not verify), 2 a
usage error.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    JsonOption,
    TokenOption,
    UrlOption,
    api_client,
    call,
    check_item_id,
    emit,
    fail,
    group,
)

if TYPE_CHECKING:
    from vault.ledger.note import Checkpoint

app = group("Custody ledger: signed checkpoints, proofs, the log's public key.")


def _ask(url: str, token: str | None, method: str, path: str, **params: Any) -> Any:
    # Parameters left out (None) are not sent.
    query = {k: v for k, v in params.items() if v is not None}
    with api_client(url, token) as client:
        return call(client, method, path, params=query)


def _open_checkpoint(signed: str, vkey: str) -> Checkpoint:
    import keys
    from vault.ledger import note

    return note.parse_checkpoint(note.open_note(signed, vkey, keys.verify_ed25519))


@app.command()
def key(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Print the log's public key in the C2SP verifier-key format."""
    body = _ask(url, token, "GET", "/v1/ledger/key")
    typer.echo(json.dumps(body, indent=2) if as_json else body["verifier_key"])


@app.command()
def checkpoint(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    size: Annotated[int | None, typer.Option(help="The checkpoint of this tree size.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Ask the vault to sign one now.")] = False,
    item: Annotated[
        str | None,
        typer.Option(
            "--item",
            help="With --new: an item you may see, so its deposit is included (not auditors).",
            callback=check_item_id,
        ),
    ] = None,
) -> None:
    """Print the newest signed checkpoint (a C2SP signed note), or sign one now (`--new`:
    auditors; or anyone, naming with `--item` an item they may see)."""
    if new and size is not None:
        fail("--new and --size exclude each other", USAGE)
    if item is not None and not new:
        fail("--item goes with --new", USAGE)
    if new:
        body = _ask(url, token, "POST", "/v1/ledger/checkpoints", item=item)
    else:
        body = _ask(url, token, "GET", "/v1/ledger/checkpoint", size=size)
    typer.echo(json.dumps(body, indent=2) if as_json else body["note"], nl=as_json)


@app.command()
def checkpoints(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
) -> None:
    """List the signed checkpoints, newest first: tree size, signing time, root hash."""
    rows = _ask(url, token, "GET", "/v1/ledger/checkpoints", limit=limit)
    lines = [f"{r['size']}\t{r['time']}\t{r['root']}" for r in rows]
    emit(rows, as_json, "\n".join(lines) or "no checkpoint signed yet")


@app.command()
def entries(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    item: Annotated[
        str | None,
        typer.Option("--item", help="Only this item's timeline.", callback=check_item_id),
    ] = None,
    since: Annotated[int, typer.Option("--since", min=0, help="From this seq on.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
) -> None:
    """Show ledger entries you may read: all of them for auditors; with --item, the timeline of
    an item you may see. Sealed details stay sealed."""
    rows = _ask(url, token, "GET", "/v1/ledger/entries", start=since, limit=limit, item=item)
    lines = [
        f"{e['seq']}\t{e['time']}\t{e['actor']}\t{e['action']}"
        + (f"\titem {e['item']}" if e.get("item") else "")
        for e in rows
    ]
    emit(rows, as_json, "\n".join(lines) or "no entries")


@app.command()
def proof(
    seq: Annotated[int | None, typer.Argument(help="Entry to prove included.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    size: Annotated[int | None, typer.Option(help="Checkpoint size (default newest).")] = None,
    old: Annotated[
        int | None, typer.Option("--old", help="Prove consistency from this checkpoint size.")
    ] = None,
    trusted_key: Annotated[
        str | None, typer.Option("--key", help="The log's verifier key you trust.")
    ] = None,
) -> None:
    """Fetch and verify an inclusion proof for entry SEQ, or a consistency proof (--old)."""
    if (seq is None) == (old is None):
        fail("give either SEQ (inclusion) or --old SIZE (consistency)", USAGE)
    from vault.ledger.errors import LedgerError

    vkey = trusted_key or _ask(url, token, "GET", "/v1/ledger/key")["verifier_key"]
    try:
        if seq is not None:
            body = _ask(url, token, "GET", "/v1/ledger/proof/inclusion", seq=seq, size=size)
            summary = _check_inclusion(body, vkey, seq)
        else:
            body = _ask(url, token, "GET", "/v1/ledger/proof/consistency", old=old, new=size)
            summary = _check_consistency(body, vkey)
    except (LedgerError, KeyError, ValueError, TypeError) as exc:
        fail(f"the proof does NOT verify: {exc}")
    typer.echo(json.dumps(body, indent=2) if as_json else summary)


def _hashes(body: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(h, validate=True) for h in body["hashes"]]


def _check_inclusion(body: dict[str, Any], vkey: str, seq: int) -> str:
    from vault.ledger.entry import leaf_hash
    from vault.ledger.tree import verify_inclusion

    signed = _open_checkpoint(body["checkpoint"], vkey)
    leaf = base64.b64decode(body["leaf_hash"], validate=True)
    text = body["entry"]
    if text is not None:
        entry = text.encode()
        if json.loads(entry)["seq"] != seq:
            raise ValueError("the proof is for another entry")
        if leaf_hash(entry) != leaf:
            raise ValueError("the entry does not hash to the proof's leaf")
    if body["seq"] != seq or body["size"] != signed.size:
        raise ValueError("the proof is for another entry or checkpoint")
    verify_inclusion(seq, signed.size, leaf, _hashes(body), signed.root)
    verified = (
        f"entry {seq} is included in checkpoint {signed.size} of {signed.origin} "
        "(signature and proof verified)"
    )
    if text is None:
        # Only those allowed to read an entry receive it; the proof from its leaf hash stands.
        return f"{verified}\nits content is withheld: your account may not read this entry"
    return f"{verified}\n{text}"


def _check_consistency(body: dict[str, Any], vkey: str) -> str:
    from vault.ledger.tree import verify_consistency

    first = _open_checkpoint(body["old_checkpoint"], vkey)
    second = _open_checkpoint(body["new_checkpoint"], vkey)
    if first.origin != second.origin or (first.size, second.size) != (
        body["old_size"],
        body["new_size"],
    ):
        raise ValueError("the proof does not match its checkpoints")
    verify_consistency(first.size, second.size, first.root, second.root, _hashes(body))
    return (
        f"checkpoint {second.size} extends checkpoint {first.size} of {first.origin} "
        "(signatures and proof verified)"
    )
