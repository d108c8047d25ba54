"""The vault's own keys: the Ed25519 log-signing key and the ES256 token-signing key.

They are separate keys with separate jobs (DESIGN.md, "Keys"); the vault keeps both as named
secrets in its keyring.
"""

from __future__ import annotations

from keys._primitives import (
    ed25519_generate,
    ed25519_public,
    ed25519_sign,
    ed25519_verify,
    p256_generate_pem,
    p256_public_pem,
)

__all__ = ["LogSigner", "generate_token_key", "public_pem", "verify_ed25519"]


class LogSigner:
    """An Ed25519 key for the ledger's signed notes (C2SP signed-note, pure Ed25519).

    **Holds the private seed in memory.**
    """

    __slots__ = ("_public", "_seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._seed = bytes(seed)
        self._public = ed25519_public(self._seed)

    @classmethod
    def generate(cls) -> LogSigner:
        """Return a signer with a fresh random key."""
        return cls(ed25519_generate())

    @classmethod
    def from_bytes(cls, seed: bytes) -> LogSigner:
        """Return the signer for the 32-byte `seed`. Raises `ValueError` on another length."""
        return cls(seed)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of `message`."""
        return ed25519_sign(self._seed, message)

    def public_key_bytes(self) -> bytes:
        """Return the 32-byte public key."""
        return self._public

    def seed(self) -> bytes:
        """Return the 32-byte private seed, to keep in the keyring. **Secret.**"""
        return self._seed

    def __repr__(self) -> str:
        return f"LogSigner(public={self._public.hex()})"


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return whether `signature` is `public_key`'s Ed25519 signature of `message`.

    Returns False (never raises) on a malformed key or signature.
    """
    return ed25519_verify(public_key, message, signature)


def generate_token_key() -> str:
    """Return a fresh ECDSA P-256 private key (for ES256 tokens) as PKCS#8 PEM. **Secret.**"""
    return p256_generate_pem()


def public_pem(private_pem: str) -> str:
    """Return the public key PEM of the P-256 `private_pem`. Raises `ValueError` otherwise."""
    return p256_public_pem(private_pem)
