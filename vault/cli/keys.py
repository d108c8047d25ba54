"""`tvault keys rotate|split|recover|generate`, `tvault users key-add|keys`, `tvault cosign`.

Admin commands (`rotate`, `split`, `recover`) open the vault's keyring where it lives; the
others talk to the API. Client-side signing: a raw Ed25519 key file (`tvault keys generate`,
`keys.generate_signing_key`) is used directly; any other key file is an OpenSSH private key,
handed to `ssh-keygen -Y sign -n testimony-vault` (the statement goes through its standard
input, so no copy of it touches the disk).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy import select, update

import keys
from policies import Resource, actions, kinds
from vault import credentials, item_keys, keystate, ledger
from vault.access import authorize
from vault.accounts import find_user, principal_of
from vault.approval_kinds import request_key_retirement
from vault.cli.admin import _open
from vault.cli.client import TokenOption, UrlOption, _call, _client
from vault.cli.common import DEFAULT_URL, USAGE, JsonOption, VaultOption, emit, fail, passphrase
from vault.cli.common import settings_for as _settings_for
from vault.compose import Vault
from vault.db import ItemKey
from vault.errors import VaultError
from vault.signatures import SIGNATURE_HEADER, STATEMENT_HEADER, build_statement

RAW_PRIVATE = "ed25519-secret:"
RAW_PUBLIC = "ed25519:"
READ = 1024 * 1024
SSH_TIMEOUT = 60.0


# --- key rotation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """What `rotate` did: the new master key version, item keys re-wrapped, and the approval
    asked for to retire the older versions (None: not asked, or nothing to retire)."""

    version: int
    previous: int
    rewrapped: int
    approval: str | None = None


def rotate(vault: Vault, actor: str, *, batch: int = 500, retire: bool = False) -> Rotation:
    """Rotate the keyring's master key and re-wrap every item key to it, `batch` per transaction.

    `actor` must be an account the policy allows `key.manage`. Safe while servers and workers
    run: the new version is made current in the database, which every process reads before it
    wraps a key (`vault.keystate`). Appends a `key rotation` ledger entry. With `retire`, asks
    for the retirement of the older versions no item key uses any more: it happens once another
    custodian approves (`tvault approvals approve ID`, DESIGN.md promise 10). Raises
    `Forbidden`, `NotFound` (no such account), `Conflict` or `keys.KeyringError`.
    """
    with vault.sessions() as session:
        principal = principal_of(session, find_user(session, actor))
    authorize(vault.sessions, principal, actions.KEY_MANAGE, Resource(kind=kinds.KEY))
    keyring = vault.keyring
    with vault.sessions() as session:
        previous = keystate.current(session)
    # The file first, then the database: a process told the new version re-reads the file.
    version = keyring.rotate()
    with vault.sessions.begin() as session:
        keystate.advance(session, version)
    rewrapped, last = 0, ""
    while True:
        # One transaction per batch: a crash leaves some keys on the old version, which stays
        # in the ring and still unwraps them; running `rotate` again finishes the job.
        with vault.sessions.begin() as session:
            # A shred moving every KEK to a new epoch must not interleave with this batch.
            item_keys.lock_writers(session)
            target = keystate.current(session)  # a later rotation elsewhere wins
            rows = session.execute(
                select(ItemKey.item_id, ItemKey.wrapped)
                .where(ItemKey.item_id > last)
                .order_by(ItemKey.item_id)
                .limit(batch)
            ).all()
            if not rows:
                break
            for item_id, wrapped in rows:
                old = bytes(wrapped)
                inner = item_keys.master_wrapped(keyring, item_id, old)
                if keyring.version_of(inner) != target:
                    # Compare and swap: a key shredded meanwhile by another process stays gone.
                    session.execute(
                        update(ItemKey)
                        .where(ItemKey.item_id == item_id, ItemKey.wrapped == old)
                        .values(wrapped=item_keys.rewrap(keyring, item_id, old, target))
                    )
                    rewrapped += 1
            last = rows[-1].item_id
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=actor,
            action=ledger.actions.KEY_ROTATION,
            details={"version": version, "previous": previous, "rewrapped": rewrapped},
        )
    asked = request_key_retirement(vault, principal) if retire else None
    return Rotation(version, previous, rewrapped, asked.id if asked else None)


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
    if tokens:
        _rotate_tokens(vault_dir, actor, as_json)
        return
    vault = _open(vault_dir)
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
    vault = _open(vault_dir)
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
    if not (2 <= threshold <= shares <= keys.MAX_SHARES):
        fail(f"need 2 <= threshold <= shares <= {keys.MAX_SHARES}", USAGE)
    vault = _open(vault_dir)
    try:
        vault.keyring.rekey()  # a lost or stolen old share set is worthless from now on
        words = keys.split_secret(vault.keyring.recovery_key(), shares, threshold)
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
    settings = _settings_for(vault_dir)
    given = list(share or [])
    if not given:
        given = [line for line in sys.stdin.read().splitlines() if line.strip()]
    try:
        secret = keys.combine_shares(given)
    except keys.RecoveryError as exc:
        fail(str(exc))
    new = passphrase(settings, confirm=True, dev=False)
    try:
        keys.Keyring.recover(settings.keyring_path, secret, new)
    except (keys.KeyringError, OSError) as exc:
        fail(f"cannot recover the keyring: {exc}")
    typer.echo(
        f"recovered the keyring in {settings.keyring_path}; it opens with the new passphrase"
    )


def keys_generate(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Private key file to create.")],
) -> None:
    """Create a raw Ed25519 signing key: FILE (private, mode 0600) and FILE.pub (to register)."""
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


# --- signing on the client --------------------------------------------------------------------


def public_key_of(key_file: Path) -> str:
    """Return the public key of the private `key_file`: from `KEYFILE.pub`, else derived.

    Raises `ValueError` if it cannot be found.
    """
    pub = key_file.with_name(key_file.name + ".pub")
    if pub.is_file():
        return pub.read_text().strip()
    text = key_file.read_text()
    for line in text.splitlines():
        if line.startswith(RAW_PUBLIC):
            return line.strip()
    if text.startswith(RAW_PRIVATE):
        raise ValueError(f"put the public key in {pub} (tvault keys generate writes it)")
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        raise ValueError("ssh-keygen is not on PATH")
    done = subprocess.run(
        [ssh_keygen, "-y", "-f", str(key_file)],
        capture_output=True,
        text=True,
        timeout=SSH_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"ssh-keygen -y: {done.stderr.strip()}")
    return done.stdout.strip()


def sign_with(key_file: Path, statement: bytes) -> str:
    """Sign `statement` with `key_file` (raw Ed25519, or OpenSSH through `ssh-keygen -Y sign`).

    Raises `ValueError` if the key cannot sign.
    """
    text = key_file.read_text()
    first = text.strip().splitlines()[0] if text.strip() else ""
    if first.startswith(RAW_PRIVATE):
        return keys.sign(statement, first)
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None:
        raise ValueError("ssh-keygen is not on PATH")
    # Without a file argument ssh-keygen signs its standard input and prints the signature.
    done = subprocess.run(
        [ssh_keygen, "-q", "-Y", "sign", "-f", str(key_file), "-n", keys.SSHSIG_NAMESPACE],
        input=statement,
        capture_output=True,
        timeout=SSH_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"ssh-keygen -Y sign: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("ascii")


def digest_of(file: Path) -> tuple[str, int]:
    """Return the SHA-256 (hex) and size of `file`, in one pass."""
    digest, size = hashlib.sha256(), 0
    with file.open("rb") as source:
        while block := source.read(READ):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def signed_headers(
    client: httpx.Client,
    key_file: Path,
    *,
    case: str,
    kind: str,
    filename: str,
    consent: str,
    sha256: str,
    size: int,
) -> dict[str, str]:
    """Build and sign a deposit statement; return the headers that carry it (base64)."""
    origin = _call(client, "GET", "/v1/signatures/origin")["origin"]
    try:
        public = public_key_of(key_file)
        statement = build_statement(
            origin=origin,
            case=case,
            sha256=sha256,
            size=size,
            filename=filename,
            kind=kind,
            consent=[s.strip() for s in consent.split(",") if s.strip()],
            key_id=keys.key_id(public),
            signed_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
        signature = sign_with(key_file, statement)
    except (ValueError, OSError, keys.SignatureError) as exc:
        fail(f"--sign-key: {exc}", USAGE)
    return {
        STATEMENT_HEADER: base64.b64encode(statement).decode("ascii"),
        SIGNATURE_HEADER: base64.b64encode(signature.encode("utf-8")).decode("ascii"),
    }


def users_key_add(
    name: str,
    key_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register the public key in KEYFILE (ed25519:... or an OpenSSH .pub) to NAME (custodians)."""
    with _client(url, token) as client:
        done = _call(
            client, "POST", f"/v1/users/{name}/keys", json={"public_key": key_file.read_text()}
        )
    emit(done, as_json, f"registered {done['key_id']} to {name}")


def users_keys(
    name: str, url: UrlOption = DEFAULT_URL, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the keys registered to NAME (custodians)."""
    with _client(url, token) as client:
        rows = _call(client, "GET", f"/v1/users/{name}/keys")
    emit(rows, as_json, "\n".join(f"{r['key_id']}\t{r['added_by']}\t{r['added_at']}" for r in rows))


def cosign(
    item: str,
    sign_key: Annotated[
        Path, typer.Option("--sign-key", exists=True, dir_okay=False, help="Your private key.")
    ],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add your signature to ITEM (co-signing therapist, witness): a signed statement of it."""
    with _client(url, token) as client:
        data: dict[str, Any] = _call(client, "GET", f"/v1/items/{item}")
        headers = signed_headers(
            client,
            sign_key,
            case=data["case_id"],
            kind=data["kind"],
            filename=data.get("filename") or "",
            consent=",".join(data["consent"]),
            sha256=data["sha256"],
            size=data["size"],
        )
        done = _call(
            client,
            "POST",
            f"/v1/items/{item}/signatures",
            json={"statement": headers[STATEMENT_HEADER], "signature": headers[SIGNATURE_HEADER]},
        )
    emit(done, as_json, f"signature {done['number']} on {item} by {done['key_id']}")


def register(*, keys_app: typer.Typer, users: typer.Typer, app: typer.Typer) -> None:
    """Add these commands to the `tvault` app (called once by `vault.cli`)."""
    keys_app.command("rotate")(keys_rotate)
    keys_app.command("split")(keys_split)
    keys_app.command("recover")(keys_recover)
    keys_app.command("generate")(keys_generate)
    users.command("key-add")(users_key_add)
    users.command("keys")(users_keys)
    app.command("cosign")(cosign)
