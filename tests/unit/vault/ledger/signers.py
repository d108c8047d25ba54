"""Test signers for the ledger's `LogSigner` port.

`FixedSigner` replays a published Ed25519 signature (the Go note package's vector), so the note
format is checked byte for byte without an Ed25519 implementation; `keys.LogSigner` is the real
one.
"""

from __future__ import annotations

import hashlib


class FixedSigner:
    """Returns one known signature for one known message, and nothing else."""

    def __init__(self, public_key: bytes, message: bytes, signature: bytes) -> None:
        self._public, self._message, self._signature = public_key, message, signature

    def sign(self, message: bytes) -> bytes:
        assert message == self._message, "FixedSigner only signs its vector's message"
        return self._signature

    def public_key_bytes(self) -> bytes:
        return self._public


class DigestSigner:
    """**Not a signature scheme**: a keyed SHA-512 of the message, to test bookkeeping only."""

    def __init__(self, secret: bytes = b"test log key") -> None:
        self._secret = secret

    def sign(self, message: bytes) -> bytes:
        return hashlib.sha512(self._secret + message).digest()

    def public_key_bytes(self) -> bytes:
        return hashlib.sha256(self._secret).digest()

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return public_key == self.public_key_bytes() and signature == self.sign(message)


class MemoryStore:
    """A write-once `CheckpointStore` in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_locked(self, name: str, data: bytes) -> None:
        assert name not in self.objects, f"{name} written twice"
        self.objects[name] = data
