"""What the ledger needs from other parts: a log signing key and a write-once object store."""

from __future__ import annotations

from typing import Protocol


class LogSigner(Protocol):
    """An Ed25519 key that signs checkpoints (`keys.LogSigner` is the one the vault uses)."""

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of `message`."""
        ...

    def public_key_bytes(self) -> bytes:
        """Return the 32-byte Ed25519 public key."""
        ...


class CheckpointStore(Protocol):
    """Where signed checkpoints are copied (the vault's `ObjectStore` fits)."""

    def put_locked(self, name: str, data: bytes) -> None:
        """Write `data` under `name` once, with retention where the store supports it."""
        ...
