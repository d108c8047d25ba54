"""`tvault keys rotate|split|recover|generate|shred`: the keys that guard the testimonies.

`rotate`, `split` and `recover` are admin commands: they open the vault's keyring where it lives
(`--vault`). `generate` writes a signing key file. `shred` is a client command: it asks, over the
API, for an item's key to be deleted; another custodian approves (the two-person rule).
"""

from __future__ import annotations

import os
import sys
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
    VaultOption,
    YesOption,
    api_client,
    asked,
    call,
    confirm,
    emit,
    fail,
    group,
    open_local,
    passphrase,
    settings_for,
)

app = group("Key management.")


@app.command("rotate")
def keys_rotate(
    vault_dir: VaultOption = None,
    actor: Annotated[
        str, typer.Option("--as", help="The custodian account doing it (for the ledger).")
    ] = "admin",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Item keys per transaction.")] = 500,
    retire: Annotated[
        bool,
        typer.Option(
            "--retire",
            help="Also ask to remove old master keys no item key uses (another custodian "
            "approves: tvault approvals approve ID).",
        ),
    ] = False,
    tokens: Annotated[
        bool,
        typer.Option(
            "--tokens",
            help="Rotate the token-signing key instead; tokens it signed stay valid until expiry.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Rotate the master key and re-wrap every item key (safe while servers and workers run).

    With `--tokens`, rotate the token-signing key instead (safe while servers run).
    """
    import keys
    from vault.errors import VaultError
    from vault.rotation import rotate

    if tokens:
        _rotate_tokens(vault_dir, actor, as_json)
        return
    vault = open_local(vault_dir)
    try:
        done = rotate(vault, actor, batch=batch, retire=retire)
    except VaultError as exc:
        fail(exc.detail)
    except keys.KeyringError as exc:
        fail(f"keyring: {exc}")
    finally:
        vault.close()
    asked = (
        f"; retiring the old versions waits for approval {done.approval} "
        f"(tvault approvals approve {done.approval})"
        if done.approval
        else ("; no old version to retire" if retire else "")
    )
    emit(
        done.__dict__,
        as_json,
        f"master key version {done.version} (was {done.previous}); {done.rewrapped} item keys "
        f"re-wrapped{asked}",
    )


def _rotate_tokens(vault_dir: VaultOption, actor: str, as_json: bool) -> None:
    import keys
    from vault import credentials
    from vault.errors import VaultError

    vault = open_local(vault_dir)
    try:
        done = credentials.rotate_token_key(vault, actor)
    except VaultError as exc:
        fail(exc.detail)
    except keys.KeyringError as exc:
        fail(f"keyring: {exc}")
    finally:
        vault.close()
    until = f"; {done.previous} stays valid until {done.previous_until}" if done.previous else ""
    emit(done.__dict__, as_json, f"token-signing key {done.kid}{until}")


@app.command("split")
def keys_split(
    shares: Annotated[int, typer.Option("--shares", help="How many trustees get a share.")],
    threshold: Annotated[int, typer.Option("--threshold", help="How many shares rebuild it.")],
    vault_dir: VaultOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print recovery shares of the keyring (SLIP-39 words); any THRESHOLD of them recover it.

    The keyring is first sealed under a fresh key, so every share set printed before no longer
    recovers it. **Each share is a secret: give each to a different trustee and keep none on
    this machine; copies of the keyring file made before this still open with the old shares,
    so replace them.**
    """
    import keys

    if not (2 <= threshold <= shares <= keys.MAX_SHARES):
        fail(f"need 2 <= threshold <= shares <= {keys.MAX_SHARES}", USAGE)
    vault = open_local(vault_dir)
    ring = vault.keyring
    try:
        # Shares recover the keyring file's own key: a key store of another kind has none.
        if not isinstance(ring, keys.Keyring):
            fail(f"{ring.location} is not a keyring file: it has no recovery shares")
        ring.rekey()  # a lost or stolen old share set is worthless from now on
        words = keys.split_secret(ring.recovery_key(), shares, threshold)
    except ValueError as exc:
        fail(str(exc), USAGE)
    except keys.KeyringError as exc:
        fail(f"keyring: {exc}")
    finally:
        vault.close()
    emit(
        {"threshold": threshold, "shares": words},
        as_json,
        "\n".join(f"share {n}: {w}" for n, w in enumerate(words, 1)),
    )


@app.command("recover")
def keys_recover(
    share: Annotated[
        list[str] | None,
        typer.Option("--share", help="A recovery share (repeat); else one per line on stdin."),
    ] = None,
    vault_dir: VaultOption = None,
) -> None:
    """Recover the keyring from recovery shares and seal it under a new passphrase.

    The new passphrase comes from TVAULT_PASSPHRASE or a prompt (asked twice).
    """
    import keys
    from vault.compose import recover_keyring

    settings = settings_for(vault_dir)
    given = list(share or [])
    if not given:
        given = [line for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        secret = keys.combine_shares(given)
    except keys.RecoveryError as exc:
        fail(str(exc))
    new = passphrase(settings, confirm=True, dev=False)
    try:
        recover_keyring(settings, secret, new)
    except (keys.KeyringError, OSError) as exc:
        fail(f"cannot recover the keyring: {exc}")
    typer.echo(
        f"recovered the keyring in {settings.keyring_path}; it opens with the new passphrase"
    )


@app.command("generate")
def keys_generate(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Private key file to create.")],
) -> None:
    """Create a raw Ed25519 signing key: FILE (private, mode 0600) and FILE.pub (to register)."""
    import keys

    public_file = file.with_name(file.name + ".pub")
    private, public = keys.generate_signing_key()
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{file} exists")
    with os.fdopen(fd, "w") as out:
        out.write(private + "\n")
    public_file.write_text(public + "\n")
    typer.echo(f"{public_file}: {keys.key_id(public)}")


@app.command("shred")
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
    with api_client(url, token) as client:
        done = call(client, "POST", f"/v1/items/{item}/shred", json=body)
    asked(done, f"shredding {item}", as_json)
