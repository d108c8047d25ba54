"""Depositor signatures over RFC 8785 canonical JSON: raw Ed25519 and OpenSSH SSHSIG.

A public key is either a raw Ed25519 key (`ed25519:` + base64 of 32 bytes) or an OpenSSH
public key line (`ssh-ed25519 AAAA... comment`; ECDSA P-256 and RSA >= 2048 also verify). A
signature is either raw Ed25519 (base64 of 64 bytes; only for a raw key) or an armored
`ssh-keygen -Y sign -n testimony-vault` signature (PROTOCOL.sshsig) made by the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, cast

import rfc8785

from keys._primitives import ed25519_generate, ed25519_public, ed25519_sign, ssh_verify
from keys._wire import Reader, WireError, ssh_string

__all__ = [
    "SSHSIG_NAMESPACE",
    "SignatureError",
    "canonical_json",
    "generate_signing_key",
    "key_id",
    "sign",
    "verify_signature",
]

SSHSIG_NAMESPACE = "testimony-vault"
"""The namespace the vault fixes for `ssh-keygen -Y sign -n` (PROTOCOL.sshsig)."""

_RAW_PUBLIC = "ed25519:"
_RAW_PRIVATE = "ed25519-secret:"
_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"
_SSHSIG_MAGIC = b"SSHSIG"
_SSHSIG_HASHES = {b"sha256": hashlib.sha256, b"sha512": hashlib.sha512}


class SignatureError(Exception):
    """A signature does not verify: wrong key, wrong namespace, altered message, malformed.

    The one error for every verification failure.
    """


def canonical_json(obj: object) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 encoding of `obj`.

    Raises `ValueError` for values JCS cannot represent (NaN, integers beyond 2^53).
    """
    try:
        return rfc8785.dumps(cast(Any, obj))
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not representable as canonical JSON: {exc}") from None


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed base64") from None


def generate_signing_key() -> tuple[str, str]:
    """Return a fresh raw Ed25519 key pair as (`ed25519-secret:...`, `ed25519:...`) strings."""
    seed = ed25519_generate()
    return (
        _RAW_PRIVATE + base64.b64encode(seed).decode("ascii"),
        _RAW_PUBLIC + base64.b64encode(ed25519_public(seed)).decode("ascii"),
    )


def sign(message: bytes, private_key: str) -> str:
    """Return the raw Ed25519 signature (base64) of `message` with `private_key`.

    Raises `ValueError` if `private_key` is not an `ed25519-secret:` string.
    """
    if not private_key.startswith(_RAW_PRIVATE):
        raise ValueError("not an ed25519-secret: key")
    try:
        seed = base64.b64decode(private_key[len(_RAW_PRIVATE) :].strip(), validate=True)
    except binascii.Error:
        raise ValueError("malformed ed25519-secret: key") from None
    if len(seed) != 32:
        raise ValueError("malformed ed25519-secret: key")
    return base64.b64encode(ed25519_sign(seed, message)).decode("ascii")


def _public_blob(public_key: str) -> tuple[bytes, bool]:
    """Return the SSH wire blob of `public_key` and whether it was given as a raw key."""
    text = public_key.strip()
    if text.startswith(_RAW_PUBLIC):
        raw = _b64decode(text[len(_RAW_PUBLIC) :])
        if len(raw) != 32:
            raise SignatureError("malformed ed25519 public key")
        return ssh_string(b"ssh-ed25519") + ssh_string(raw), True
    fields = text.split()
    if len(fields) < 2:
        raise SignatureError("unrecognised public key")
    blob = _b64decode(fields[1])
    try:
        key_type = Reader(blob).string()
    except WireError:
        raise SignatureError("malformed public key") from None
    if key_type != fields[0].encode("ascii", "replace"):
        raise SignatureError("public key type does not match its blob")
    return blob, False


def key_id(public_key: str) -> str:
    """Return the `SHA256:...` fingerprint of `public_key`, as `ssh-keygen -l` prints it.

    A raw Ed25519 key and the same key as an OpenSSH line get the same id. Raises
    `SignatureError` on a malformed key.
    """
    blob, _ = _public_blob(public_key)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).rstrip(b"=")
    return "SHA256:" + digest.decode("ascii")


def _verify_sshsig(message: bytes, armored: str, blob: bytes) -> None:
    lines = [line.strip() for line in armored.strip().splitlines()]
    if len(lines) < 3 or lines[0] != _ARMOR_BEGIN or lines[-1] != _ARMOR_END:
        raise SignatureError("malformed SSH signature armor")
    data = _b64decode("".join(lines[1:-1]))
    try:
        reader = Reader(data)
        if reader.raw(6) != _SSHSIG_MAGIC or reader.uint32() != 1:
            raise SignatureError("not an SSHSIG version 1 signature")
        signer, namespace, reserved = reader.string(), reader.string(), reader.string()
        hash_name, sig_blob = reader.string(), reader.string()
        reader.done()
        sig_reader = Reader(sig_blob)
        algorithm, raw_sig = sig_reader.string(), sig_reader.string()
        sig_reader.done()
    except WireError:
        raise SignatureError("malformed SSH signature") from None
    # The namespace stops a signature made for another purpose (git commits, files) from
    # being replayed as a deposit statement (PROTOCOL.sshsig, "namespace").
    if namespace != SSHSIG_NAMESPACE.encode("ascii"):
        raise SignatureError("signature namespace is not " + SSHSIG_NAMESPACE)
    if signer != blob:
        raise SignatureError("signature was made by another key")
    hasher = _SSHSIG_HASHES.get(hash_name)
    if hasher is None:
        raise SignatureError("unsupported SSHSIG hash algorithm")
    signed = (
        _SSHSIG_MAGIC
        + ssh_string(namespace)
        + ssh_string(reserved)
        + ssh_string(hash_name)
        + ssh_string(hasher(message).digest())
    )
    if not ssh_verify(blob, algorithm.decode("ascii", "replace"), raw_sig, signed):
        raise SignatureError("signature does not verify")


def verify_signature(message: bytes, signature: str, public_key: str) -> None:
    """Verify `signature` over `message` by `public_key`.

    Raises `SignatureError` on any failure: malformed input, wrong key, wrong SSHSIG
    namespace, altered message, or a raw signature offered for an OpenSSH key (an SSH key
    signs only through SSHSIG, whose namespace keeps its signatures apart).
    """
    blob, is_raw = _public_blob(public_key)
    if signature.lstrip().startswith(_ARMOR_BEGIN):
        _verify_sshsig(message, signature, blob)
        return
    if not is_raw:
        raise SignatureError("an OpenSSH key must sign with ssh-keygen -Y sign")
    raw = _b64decode(signature.removeprefix(_RAW_PUBLIC))
    if len(raw) != 64 or not ssh_verify(blob, "ssh-ed25519", raw, message):
        raise SignatureError("signature does not verify")
