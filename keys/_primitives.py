"""The one module that imports `cryptography.hazmat`: thin, typed wrappers over the primitives.

Everything else in `keys` builds recipes from these functions, so the hazardous layer can be
audited in one place and nothing outside `keys` ever sees a nonce or a raw cipher object.
"""

from __future__ import annotations

import base64
import hmac
import os

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys._wire import Reader, read_mpint_pair

__all__ = [
    "TAG_SIZE",
    "Aead",
    "AuthenticationFailed",
    "X25519Secret",
    "ed25519_generate",
    "ed25519_public",
    "ed25519_sign",
    "ed25519_verify",
    "equal",
    "hkdf_sha256",
    "hmac_sha256",
    "p256_generate_pem",
    "p256_public_pem",
    "random_bytes",
    "ssh_verify",
    "x25519_base",
]

TAG_SIZE = 16


class AuthenticationFailed(Exception):
    """An AEAD tag or a signature did not verify (the recipes map it to their own error)."""


def random_bytes(n: int) -> bytes:
    """Return `n` bytes from the operating system's CSPRNG."""
    return os.urandom(n)


def equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in constant time."""
    return hmac.compare_digest(a, b)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """Derive `length` bytes with HKDF-SHA-256 (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """Return HMAC-SHA-256 of `data` under `key`."""
    mac = HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


class Aead:
    """ChaCha20-Poly1305 (RFC 8439) under one key, with output buffers the caller can reuse."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._cipher = ChaCha20Poly1305(key)

    def seal(self, nonce: bytes, data: bytes | memoryview, aad: bytes | None = None) -> bytes:
        """Encrypt and authenticate `data`; return ciphertext || tag."""
        return self._cipher.encrypt(nonce, data, aad)

    def seal_into(self, nonce: bytes, data: bytes | bytearray | memoryview, out: memoryview) -> int:
        """Encrypt `data` into `out` (which must hold len(data) + 16 bytes); return its length."""
        return self._cipher.encrypt_into(nonce, data, None, out)

    def open(self, nonce: bytes, data: bytes | memoryview, aad: bytes | None = None) -> bytes:
        """Verify and decrypt `data`. Raises `AuthenticationFailed` if the tag does not verify."""
        try:
            return self._cipher.decrypt(nonce, data, aad)
        except InvalidTag:
            raise AuthenticationFailed from None

    def open_into(self, nonce: bytes, data: bytes | memoryview, out: memoryview) -> int:
        """Verify and decrypt `data` into `out` (exactly len(data) - 16 bytes); return its length.

        Raises `AuthenticationFailed` if the tag does not verify; `out` is then zeroed, because
        `decrypt_into` writes the plaintext before it checks the tag (cryptography 50). Even
        so, `out` must be a private buffer that nobody reads before this call returns.
        """
        try:
            return self._cipher.decrypt_into(nonce, data, None, out)
        except InvalidTag:
            out[:] = bytes(len(out))
            raise AuthenticationFailed from None


def x25519_base(scalar: bytes) -> bytes:
    """Return the X25519 public point of the 32-byte secret `scalar` (clamped per RFC 7748)."""
    private = x25519.X25519PrivateKey.from_private_bytes(scalar)
    return private.public_key().public_bytes_raw()


class X25519Secret:
    """An X25519 secret parsed once, for many exchanges: building the key object from bytes
    costs about as much as an exchange (it derives the public point)."""

    def __init__(self, scalar: bytes) -> None:
        """Raises `ValueError` if `scalar` is not 32 bytes."""
        self._private = x25519.X25519PrivateKey.from_private_bytes(scalar)
        self.public = self._private.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return "X25519Secret(<secret>)"  # never the scalar in a traceback or log

    def shared(self, point: bytes) -> bytes:
        """Return X25519(secret, `point`). Raises `ValueError` on an all-zero (low-order)
        result."""
        # cryptography refuses the all-zero shared secret (RFC 7748 6.1) with ValueError, which
        # is exactly the check the age spec asks of the X25519 recipient type.
        return self._private.exchange(x25519.X25519PublicKey.from_public_bytes(point))


def ed25519_generate() -> bytes:
    """Return a fresh 32-byte Ed25519 seed."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes_raw()


def ed25519_public(seed: bytes) -> bytes:
    """Return the 32-byte Ed25519 public key of `seed`."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """Sign `message` with the Ed25519 key `seed` (RFC 8032, pure Ed25519)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return whether `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


_SSH_ALGORITHMS = {
    b"ssh-ed25519": ("ssh-ed25519",),
    b"ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    b"ssh-rsa": ("rsa-sha2-256", "rsa-sha2-512"),
}


def ssh_verify(key_blob: bytes, algorithm: str, signature: bytes, message: bytes) -> bool:
    """Verify an SSH signature (RFC 5656, RFC 8332, RFC 8709 encodings) over `message`.

    `key_blob` is the public key in SSH wire format, `algorithm` the signature format name and
    `signature` the raw signature bytes inside the SSH signature blob. Returns False on any
    mismatch, including an algorithm that does not fit the key or an RSA key under 2048 bits.
    """
    try:
        key_type = Reader(key_blob).string()
        # Only plain key types: security-key (sk-*) and certificate types sign other messages
        # and carry other fields, so they are refused rather than half-understood.
        if algorithm not in _SSH_ALGORITHMS.get(key_type, ()):
            return False
        key = serialization.load_ssh_public_key(key_type + b" " + base64.b64encode(key_blob))
        if isinstance(key, ed25519.Ed25519PublicKey) and algorithm == "ssh-ed25519":
            key.verify(signature, message)
            return True
        if (
            isinstance(key, ec.EllipticCurvePublicKey)
            and key.curve.name == "secp256r1"
            and algorithm == "ecdsa-sha2-nistp256"
        ):
            r, s = read_mpint_pair(signature)
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
            return True
        if (
            isinstance(key, rsa.RSAPublicKey)
            and key.key_size >= 2048
            and algorithm in ("rsa-sha2-256", "rsa-sha2-512")
        ):
            digest = hashes.SHA512() if algorithm == "rsa-sha2-512" else hashes.SHA256()
            key.verify(signature, message, PKCS1v15(), digest)
            return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return False


def p256_generate_pem() -> str:
    """Return a fresh ECDSA P-256 private key as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def p256_public_pem(private_pem: str) -> str:
    """Return the SubjectPublicKeyInfo PEM of a P-256 private key PEM.

    Raises `ValueError` if `private_pem` is not an unencrypted P-256 private key.
    """
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 private key")
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
