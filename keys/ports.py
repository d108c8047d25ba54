"""The KeyStore port: where item identities are wrapped and the vault's own secrets are kept.

`keys.Keyring` (a passphrase-sealed file) is the embedded adapter; an external KMS would be
another. The vault depends on this protocol, not on the file.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["KeyStore"]


@runtime_checkable
class KeyStore(Protocol):
    """Wraps item identities under a versioned master key and keeps named secrets."""

    @property
    def location(self) -> str:
        """Where the store is (a file's path, a KMS's address), for an operator's log."""
        ...

    @property
    def current_version(self) -> int:
        """The master key version new wraps use."""
        ...

    @property
    def versions(self) -> tuple[int, ...]:
        """Every master key version the store still holds, oldest first."""
        ...

    def reload(self) -> None:
        """Read the store again: versions and secrets other processes added or removed.

        Raises `KeyringError` if it cannot be read (this process's keys stay as they were).
        """
        ...

    def wrap(self, identity: str, version: int | None = None) -> bytes:
        """Wrap an age identity under `version` (default: the current one).

        Raises `ValueError` if malformed, `KeyringError` if `version` is not held.
        """
        ...

    def has_version(self, version: int) -> bool:
        """Return whether master key `version` is held (looking again at the store if not)."""
        ...

    def version_of(self, wrapped: bytes) -> int:
        """Return the master key version `wrapped` was made with. Raises `KeyringError`."""
        ...

    def unwrap(self, wrapped: bytes) -> str:
        """Return the identity in `wrapped`. Raises `KeyringError` if it cannot."""
        ...

    def rewrap(self, wrapped: bytes, version: int | None = None) -> bytes:
        """Return `wrapped` under `version` (default: the current one). Raises `KeyringError`."""
        ...

    def rotate(self) -> int:
        """Add a master key version, make it current, return it."""
        ...

    def retire(self, version: int) -> None:
        """Remove master key `version`. **Identities still wrapped under it become unreadable.**

        Raises `KeyringError` for the current version or one not held.
        """
        ...

    def has_secret(self, name: str) -> bool:
        """Return whether a secret named `name` is kept."""
        ...

    def secret(self, name: str) -> bytes:
        """Return the secret `name`. Raises `KeyringError` if there is none."""
        ...

    def set_secret(self, name: str, value: bytes) -> None:
        """Keep `value` under `name`, replacing any previous value."""
        ...

    def add_secret(self, name: str, value: bytes) -> bytes:
        """Keep `value` under `name` unless a secret of that name is kept already (by any
        process); return the secret kept."""
        ...

    def delete_secret(self, name: str) -> bool:
        """Remove the secret `name`; return whether it was there. **What it sealed is lost.**"""
        ...
