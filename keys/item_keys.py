"""Item keys that a shred can destroy in every copy: a per-item KEK under a replaceable epoch key.

An item identity wrapped by the master key alone (`Keyring.wrap`, format `tvk1`) can be
opened from any old database backup with the current keyring: deleting the row destroys
nothing the backup lacks. So the master-wrapped identity is sealed once more, under a random
per-item key-encryption key (KEK), and the KEK under an *epoch key*, a keyring secret named
`item-kek-epoch/<epoch>`. Crypto-shredding moves every other item's KEK to a new epoch and then
deletes the old epoch key from the keyring: every database copy from before the shred holds
KEKs under an epoch key that no longer exists anywhere but in keyring copies from before it.

Format `tvk2` (bytes, one column; 180 bytes):

    "tvk2" || epoch (16) || nonce (12) || ChaCha20-Poly1305(epoch key, KEK) (48)
           || nonce (12) || ChaCha20-Poly1305(KEK, master-wrapped identity) (88)

Both seals take `"tvk2" || epoch || context` as associated data, `context` being the item's id:
a wrapped key moved to another item's row no longer opens. `tvk1` values (older items) are
still opened, and gain a KEK when they are moved to an epoch.
"""

from __future__ import annotations

import struct
from typing import Final

from keys._primitives import Aead, AuthenticationFailed, random_bytes
from keys.keyring import KeyringError
from keys.ports import KeyStore

__all__ = [
    "EPOCH_SECRET",
    "forget_epoch",
    "move_item",
    "new_epoch",
    "open_item",
    "rewrap_item",
    "seal_item",
    "wrapped_identity",
]

EPOCH_SECRET: Final = "item-kek-epoch/"  # noqa: S105 (the name of a secret, not one)
_MAGIC: Final = b"tvk2"
_LEGACY: Final = b"tvk1"
_EPOCH: Final = 16
_NONCE: Final = 12
_KEY: Final = 32
_HEAD: Final = struct.Struct(f">4s{_EPOCH}s")
_SEALED_KEK: Final = _NONCE + _KEY + 16


def new_epoch(keyring: KeyStore) -> str:
    """Add a fresh epoch key to `keyring` and return the epoch's name (32 hex digits)."""
    epoch = random_bytes(_EPOCH).hex()
    keyring.add_secret(EPOCH_SECRET + epoch, random_bytes(_KEY))
    return epoch


def forget_epoch(keyring: KeyStore, epoch: str) -> bool:
    """Delete the key of `epoch` from `keyring`. **Every KEK still under it is lost.**"""
    return keyring.delete_secret(EPOCH_SECRET + epoch)


def _epoch_key(keyring: KeyStore, epoch: bytes) -> Aead:
    return Aead(keyring.secret(EPOCH_SECRET + epoch.hex()))


def seal_item(keyring: KeyStore, context: bytes, inner: bytes, epoch: str) -> bytes:
    """Seal `inner`, the item `context`'s identity as `Keyring.wrap` made it (`tvk1`), under a
    fresh KEK and the key of `epoch`. Raises `KeyringError` if `inner` is not a wrapped
    identity of this ring or the epoch key is not in it."""
    keyring.unwrap(inner)  # authenticate what is sealed
    return _seal(keyring, context, inner, random_bytes(_KEY), epoch)


def _seal(keyring: KeyStore, context: bytes, inner: bytes, kek: bytes, epoch: str) -> bytes:
    head = _HEAD.pack(_MAGIC, bytes.fromhex(epoch))
    aad = head + context
    kek_nonce, inner_nonce = random_bytes(_NONCE), random_bytes(_NONCE)
    sealed_kek = _epoch_key(keyring, bytes.fromhex(epoch)).seal(kek_nonce, kek, aad)
    sealed_inner = Aead(kek).seal(inner_nonce, inner, aad)
    return head + kek_nonce + sealed_kek + inner_nonce + sealed_inner


def _open(keyring: KeyStore, context: bytes, wrapped: bytes) -> tuple[bytes, bytes]:
    """Return (KEK, master-wrapped identity). Raises `KeyringError`."""
    if len(wrapped) <= _HEAD.size + _SEALED_KEK + _NONCE:
        raise KeyringError("not a wrapped item key")
    magic, epoch = _HEAD.unpack_from(wrapped)
    if magic != _MAGIC:
        raise KeyringError("not a wrapped item key")
    aad = wrapped[: _HEAD.size] + context
    body = wrapped[_HEAD.size :]
    try:
        kek = _epoch_key(keyring, epoch).open(body[:_NONCE], body[_NONCE:_SEALED_KEK], aad)
        rest = body[_SEALED_KEK:]
        inner = Aead(kek).open(rest[:_NONCE], rest[_NONCE:], aad)
    except AuthenticationFailed:
        raise KeyringError("wrapped item key is damaged or belongs to another item") from None
    return kek, inner


def wrapped_identity(keyring: KeyStore, context: bytes, wrapped: bytes) -> bytes:
    """Return the master-wrapped identity (`tvk1`) inside `wrapped`. Raises `KeyringError`."""
    if wrapped[:4] == _LEGACY:
        return wrapped
    return _open(keyring, context, wrapped)[1]


def open_item(keyring: KeyStore, context: bytes, wrapped: bytes) -> str:
    """Return the age identity of the item `context`. Raises `KeyringError` if the epoch key
    is gone (the item was shredded in this copy's future) or anything was altered."""
    return keyring.unwrap(wrapped_identity(keyring, context, wrapped))


def move_item(keyring: KeyStore, context: bytes, wrapped: bytes, epoch: str) -> bytes:
    """Return `wrapped` with its KEK sealed under `epoch` (an older `tvk1` value gets a fresh
    KEK). The identity inside is not touched. Raises `KeyringError`."""
    if wrapped[:4] == _LEGACY:
        keyring.unwrap(wrapped)  # authenticate what is kept
        return _seal(keyring, context, wrapped, random_bytes(_KEY), epoch)
    kek, inner = _open(keyring, context, wrapped)
    return _seal(keyring, context, inner, kek, epoch)


def rewrap_item(
    keyring: KeyStore, context: bytes, wrapped: bytes, version: int | None = None
) -> bytes:
    """Return `wrapped` with the identity inside re-wrapped under master key `version` (default:
    the ring's current one; key rotation), under the same KEK and epoch. Raises `KeyringError`."""
    if wrapped[:4] == _LEGACY:
        return keyring.rewrap(wrapped, version)
    kek, inner = _open(keyring, context, wrapped)
    epoch = _HEAD.unpack_from(wrapped)[1].hex()
    return _seal(keyring, context, keyring.rewrap(inner, version), kek, epoch)
