"""`tvault cosign` and signing on the client: deposit statements signed before they leave.

A raw Ed25519 key file (`tvault keys generate`, `keys.generate_signing_key`) is used directly;
any other key file is an OpenSSH private key, handed to `ssh-keygen -Y sign -n testimony-vault`
(the statement goes through its standard input, so no copy of it touches the disk).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault.cli.common import (
    DEFAULT_URL,
    USAGE,
    ItemArgument,
    JsonOption,
    TokenOption,
    UrlOption,
    api_client,
    call,
    emit,
    fail,
)

if TYPE_CHECKING:
    import httpx

RAW_PRIVATE = "ed25519-secret:"
RAW_PUBLIC = "ed25519:"
READ = 1024 * 1024
SSH_TIMEOUT = 60.0


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
    import keys

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
    import keys
    from vault.signatures import SIGNATURE_HEADER, STATEMENT_HEADER, build_statement

    origin = call(client, "GET", "/v1/signatures/origin")["origin"]
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


def cosign(
    item: ItemArgument,
    sign_key: Annotated[
        Path, typer.Option("--sign-key", exists=True, dir_okay=False, help="Your private key.")
    ],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add your signature to ITEM (co-signing therapist, witness): a signed statement of it."""
    from vault.signatures import SIGNATURE_HEADER, STATEMENT_HEADER

    with api_client(url, token) as client:
        data: dict[str, Any] = call(client, "GET", f"/v1/items/{item}")
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
        done = call(
            client,
            "POST",
            f"/v1/items/{item}/signatures",
            json={"statement": headers[STATEMENT_HEADER], "signature": headers[SIGNATURE_HEADER]},
        )
    emit(done, as_json, f"signature {done['number']} on {item} by {done['key_id']}")
