"""Depositor signatures: raw Ed25519 and SSHSIG signatures (the vectors were made by the real
`ssh-keygen`; signatures it makes live: tests/integration/test_signatures_ssh_keygen.py)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import keys

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sshsig"
STATEMENT = (VECTORS / "statement.json").read_bytes()
KINDS = ["ed25519", "ecdsa", "rsa"]


def _pub(kind: str) -> str:
    return (VECTORS / f"{kind}.pub").read_text()


def _sig(name: str) -> str:
    return (VECTORS / f"{name}.sig").read_text()


def _armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode()
    return f"-----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----\n"


# --- canonical JSON -------------------------------------------------------------------------


def test_canonical_json_is_rfc8785() -> None:
    # RFC 8785 3.2.3 orders keys by UTF-16 code units and uses ES6 number formatting.
    assert keys.canonical_json({"b": 1, "a": [1.0, 1e21, "\u20ac"], "\u00e9": None}) == (
        '{"a":[1,1e+21,"\u20ac"],"b":1,"\u00e9":null}'.encode()
    )
    assert keys.canonical_json(json.loads(STATEMENT)) == STATEMENT


def test_canonical_json_refuses_what_it_cannot_represent() -> None:
    with pytest.raises(ValueError):
        keys.canonical_json({"n": float("nan")})


# --- SSHSIG vectors made by ssh-keygen -------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ssh_keygen_vectors_verify(kind: str) -> None:
    keys.verify_signature(STATEMENT, _sig(kind), _pub(kind))


def test_sha256_variant_verifies() -> None:
    keys.verify_signature(STATEMENT, _sig("ed25519-sha256"), _pub("ed25519"))


@pytest.mark.parametrize("kind", KINDS)
def test_altered_statement_is_rejected(kind: str) -> None:
    altered = STATEMENT.replace(b"case-7", b"case-8")
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(altered, _sig(kind), _pub(kind))
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT + b"\n", _sig(kind), _pub(kind))


def test_wrong_namespace_is_rejected() -> None:
    with pytest.raises(keys.SignatureError, match="namespace"):
        keys.verify_signature(STATEMENT, _sig("ed25519-namespace-file"), _pub("ed25519"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("other", KINDS)
def test_wrong_key_is_rejected(kind: str, other: str) -> None:
    if kind == other:
        return
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, _sig(kind), _pub(other))


def test_signature_with_swapped_key_inside_is_rejected() -> None:
    # Replace the embedded signer key by another: the outer check must catch the mismatch,
    # and even a matching embedded key cannot make another key's signature verify.
    blob = base64.b64decode("".join(_sig("ed25519").strip().splitlines()[1:-1]))
    other = keys.generate_signing_key()[1]
    raw_other = base64.b64decode(other.removeprefix("ed25519:"))
    forged = blob.replace(
        blob[blob.index(b"ssh-ed25519") + 15 : blob.index(b"ssh-ed25519") + 47], raw_other
    )
    armored = _armor(forged)
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, armored, _pub("ed25519"))
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, armored, other)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----",
        "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----",
        "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----",
        "not base64 at all",
        base64.b64encode(b"\x00" * 64).decode(),
    ],
)
def test_malformed_signatures_are_rejected(signature: str) -> None:
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, signature, _pub("ed25519"))


def test_every_corrupted_byte_of_an_sshsig_is_rejected() -> None:
    lines = _sig("ed25519").strip().splitlines()
    blob = base64.b64decode("".join(lines[1:-1]))
    for pos in range(len(blob)):
        altered = bytearray(blob)
        altered[pos] ^= 0x01
        armored = _armor(bytes(altered))
        with pytest.raises(keys.SignatureError):
            keys.verify_signature(STATEMENT, armored, _pub("ed25519"))


@pytest.mark.parametrize("bad", ["", "ssh-ed25519", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAI", "x y"])
def test_malformed_public_keys_are_rejected(bad: str) -> None:
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, _sig("ed25519"), bad)


def test_raw_ed25519_key_accepts_the_sshsig_of_the_same_key() -> None:
    blob = base64.b64decode(_pub("ed25519").split()[1])
    raw = "ed25519:" + base64.b64encode(blob[-32:]).decode()
    keys.verify_signature(STATEMENT, _sig("ed25519"), raw)
    assert keys.key_id(raw) == keys.key_id(_pub("ed25519"))


# --- fingerprints ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_key_id_matches_ssh_keygen_fingerprint(kind: str) -> None:
    fingerprint = (VECTORS / f"{kind}.fingerprint").read_text().split()[1]
    assert keys.key_id(_pub(kind)) == fingerprint


# --- raw Ed25519 ----------------------------------------------------------------------------

# RFC 8032 7.1, TEST 2.
RFC_PUBLIC = (
    "ed25519:"
    + base64.b64encode(
        bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    ).decode()
)
RFC_PRIVATE = (
    "ed25519-secret:"
    + base64.b64encode(
        bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    ).decode()
)
RFC_SIGNATURE = base64.b64encode(
    bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
).decode()


def test_raw_ed25519_matches_rfc8032_vector() -> None:
    assert keys.sign(b"\x72", RFC_PRIVATE) == RFC_SIGNATURE
    keys.verify_signature(b"\x72", RFC_SIGNATURE, RFC_PUBLIC)
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(b"\x73", RFC_SIGNATURE, RFC_PUBLIC)


def test_generated_raw_key_signs_and_verifies() -> None:
    private, public = keys.generate_signing_key()
    signature = keys.sign(STATEMENT, private)
    keys.verify_signature(STATEMENT, signature, public)
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT + b" ", signature, public)
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(STATEMENT, signature, keys.generate_signing_key()[1])
    assert keys.key_id(public).startswith("SHA256:")


def test_raw_signature_is_refused_for_an_openssh_key() -> None:
    # An SSH key signs deposits only through SSHSIG, whose namespace separates its uses.
    blob = base64.b64decode(_pub("ed25519").split()[1])
    assert len(blob) == 51
    with pytest.raises(keys.SignatureError):
        keys.verify_signature(b"\x72", RFC_SIGNATURE, _pub("ed25519"))


def test_sign_refuses_a_public_or_malformed_key() -> None:
    with pytest.raises(ValueError):
        keys.sign(b"x", RFC_PUBLIC)
    with pytest.raises(ValueError):
        keys.sign(b"x", "ed25519-secret:AAAA")


def test_security_key_types_are_refused() -> None:
    # An sk-ssh-ed25519 key wraps a plain Ed25519 point; a signature shaped as plain Ed25519
    # under it must still be refused, since such keys sign a different message.
    from keys._primitives import ed25519_generate, ed25519_public, ed25519_sign
    from keys._wire import ssh_string

    seed = ed25519_generate()
    blob = (
        ssh_string(b"sk-ssh-ed25519@openssh.com")
        + ssh_string(ed25519_public(seed))
        + ssh_string(b"ssh:")
    )
    public = "sk-ssh-ed25519@openssh.com " + base64.b64encode(blob).decode()
    namespace, hash_name = keys.SSHSIG_NAMESPACE.encode(), b"sha512"
    signed = (
        b"SSHSIG"
        + ssh_string(namespace)
        + ssh_string(b"")
        + ssh_string(hash_name)
        + ssh_string(hashlib.sha512(STATEMENT).digest())
    )
    sig_blob = ssh_string(b"ssh-ed25519") + ssh_string(ed25519_sign(seed, signed))

    def sshsig(key_blob: bytes) -> str:
        return _armor(
            b"SSHSIG"
            + (1).to_bytes(4, "big")
            + ssh_string(key_blob)
            + ssh_string(namespace)
            + ssh_string(b"")
            + ssh_string(hash_name)
            + ssh_string(sig_blob)
        )

    with pytest.raises(keys.SignatureError, match="does not verify"):
        keys.verify_signature(STATEMENT, sshsig(blob), public)
    # The same construction with a plain key verifies: the refusal is the key type alone.
    plain = ssh_string(b"ssh-ed25519") + ssh_string(ed25519_public(seed))
    keys.verify_signature(
        STATEMENT, sshsig(plain), "ssh-ed25519 " + base64.b64encode(plain).decode()
    )
