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
    def current_version(self) -> int:
        """The master key version new wraps use."""
        ...

    def wrap(self, identity: str, version: int | None = None) -> bytes:
        """Wrap an age identity under `version` (default: the current one).

        Raises `ValueError` if malformed, `KeyringError` if `version` is not held.
        """
        ...

    def has_version(self, version: int) -> bool:
        """Return whether master key `version` is held (looking again at the store if not)."""
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

    def secret(self, name: str) -> bytes:
        """Return the secret `name`. Raises `KeyringError` if there is none."""
        ...

    def set_secret(self, name: str, value: bytes) -> None:
        """Keep `value` under `name`, replacing any previous value."""
        ...
