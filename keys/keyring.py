"""The keyring file: versioned master key-encryption keys and named secrets, under a passphrase.

File format (JSON, see docs/keys.md): the Argon2id parameters and salt in the clear; a random
32-byte *keyring key* wrapped under the passphrase-derived key; the content (master key
versions, named secrets) sealed under the keyring key; and a SHA-256 checksum of all of it, so
a damaged file is told apart from a wrong passphrase without weakening either check. Recovery
shares rebuild the keyring key, which opens the content without the passphrase.

Item identities are wrapped under a master key version; `rotate` adds a version, and
`rewrap` moves a wrapped identity to the current one without touching any payload.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2.low_level
import rfc8785

from keys import age
from keys._primitives import Aead, AuthenticationFailed, hkdf_sha256, random_bytes

__all__ = ["KdfParams", "Keyring", "KeyringError"]

_FORMAT = "testimony-vault-keyring"
_FORMAT_VERSION = 1
_WRAP_MAGIC = b"tvk1"
_WRAP_HEAD = struct.Struct(">4sI")
_WRAP_SALT = 16
_WRAP_INFO = b"testimony-vault/item-identity-wrap/v1"
_CONTENT_AAD = b"testimony-vault-keyring/1 content"
_KEY_SIZE = 32


class KeyringError(Exception):
    """The keyring cannot be used: wrong passphrase, damaged file, unknown version or secret."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters for the passphrase (RFC 9106 4, second recommended option)."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 4

    def check(self) -> None:
        """Raise `KeyringError` on parameters too weak to protect or too heavy to run."""
        if not (1 <= self.time_cost <= 64):
            raise KeyringError("keyring KDF time_cost out of range")
        if not (8 * 1024 <= self.memory_cost_kib <= 4 * 1024 * 1024):
            raise KeyringError("keyring KDF memory_cost out of range")
        if not (1 <= self.parallelism <= 64):
            raise KeyringError("keyring KDF parallelism out of range")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise KeyringError("keyring file is corrupted (bad field)")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise KeyringError("keyring file is corrupted (bad base64)") from None


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    if not passphrase:
        raise KeyringError("the passphrase must not be empty")
    return argon2.low_level.hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=_KEY_SIZE,
        type=argon2.low_level.Type.ID,
        version=19,
    )


def _checksum(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


@dataclass
class _Content:
    current: int
    masters: dict[int, bytes]
    secrets: dict[str, bytes]

    def to_bytes(self) -> bytes:
        return rfc8785.dumps(
            {
                "current": self.current,
                "masters": {str(v): _b64(k) for v, k in self.masters.items()},
                "secrets": {n: _b64(s) for n, s in self.secrets.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> _Content:
        try:
            raw = json.loads(data)
            masters = {int(v): _unb64(k) for v, k in raw["masters"].items()}
            secrets = {str(n): _unb64(s) for n, s in raw["secrets"].items()}
            current = int(raw["current"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyringError("keyring content is corrupted") from None
        if current not in masters or any(len(k) != _KEY_SIZE for k in masters.values()):
            raise KeyringError("keyring content is corrupted")
        return cls(current, masters, secrets)


class _File:
    """The parsed outer document of a keyring file."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    @classmethod
    def read(cls, path: Path) -> _File:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeyringError(f"no keyring at {path}") from None
        try:
            doc = json.loads(raw)
            ok = (
                isinstance(doc, dict)
                and doc.get("format") == _FORMAT
                and isinstance(doc.get("checksum"), str)
            )
        except (ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            raise KeyringError(f"{path} is not a keyring file, or it is corrupted")
        if doc.get("version") != _FORMAT_VERSION:
            raise KeyringError(f"{path}: unsupported keyring format version")
        if _checksum(doc) != doc["checksum"]:
            raise KeyringError(f"{path} is corrupted (checksum mismatch); restore it from a copy")
        return cls(doc)

    def params(self) -> tuple[KdfParams, bytes]:
        try:
            kdf = self.doc["kdf"]
            if kdf["algorithm"] != "argon2id" or kdf["version"] != 19:
                raise KeyringError("unsupported keyring KDF")
            params = KdfParams(
                int(kdf["time_cost"]), int(kdf["memory_cost_kib"]), int(kdf["parallelism"])
            )
            salt = _unb64(kdf["salt"])
        except (KeyError, TypeError, ValueError):
            raise KeyringError("keyring file is corrupted (KDF parameters)") from None
        params.check()
        return params, salt

    def kdf_aad(self) -> bytes:
        # The wrapped keyring key is bound to the KDF record, so parameters cannot be swapped.
        return rfc8785.dumps(self.doc["kdf"])

    def unwrap_key(self, passphrase_key: bytes) -> bytes:
        try:
            wrapped = self.doc["key"]
            nonce, data = _unb64(wrapped["nonce"]), _unb64(wrapped["wrapped"])
            key = Aead(passphrase_key).open(nonce, data, self.kdf_aad())
        except AuthenticationFailed:
            raise KeyringError("wrong passphrase for this keyring") from None
        except (KeyError, TypeError, ValueError):
            raise KeyringError("keyring file is corrupted (wrapped key)") from None
        return key

    def content(self, keyring_key: bytes) -> _Content:
        try:
            sealed = self.doc["content"]
            nonce, data = _unb64(sealed["nonce"]), _unb64(sealed["ciphertext"])
            plain = Aead(keyring_key).open(nonce, data, _CONTENT_AAD)
        except AuthenticationFailed:
            raise KeyringError("keyring content does not open with this key") from None
        except (KeyError, TypeError, ValueError):
            raise KeyringError("keyring file is corrupted (content)") from None
        return _Content.from_bytes(plain)


def _document(
    params: KdfParams, salt: bytes, passphrase_key: bytes, keyring_key: bytes, content: _Content
) -> bytes:
    kdf: dict[str, Any] = {
        "algorithm": "argon2id",
        "version": 19,
        "time_cost": params.time_cost,
        "memory_cost_kib": params.memory_cost_kib,
        "parallelism": params.parallelism,
        "salt": _b64(salt),
    }
    key_nonce, content_nonce = random_bytes(12), random_bytes(12)
    doc: dict[str, Any] = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "kdf": kdf,
        "key": {
            "nonce": _b64(key_nonce),
            "wrapped": _b64(Aead(passphrase_key).seal(key_nonce, keyring_key, rfc8785.dumps(kdf))),
        },
        "content": {
            "nonce": _b64(content_nonce),
            "ciphertext": _b64(
                Aead(keyring_key).seal(content_nonce, content.to_bytes(), _CONTENT_AAD)
            ),
        },
    }
    doc["checksum"] = _checksum(doc)
    return json.dumps(doc, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _atomic_write(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write `data` to `path` by temp file, fsync, rename (or link, when `exclusive`).

    Raises `KeyringError` if `exclusive` and `path` exists; `path` is never half-written.
    """
    tmp = path.with_name(f".{path.name}.{random_bytes(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # fails if `path` exists: create never overwrites
            except FileExistsError:
                raise KeyringError(f"{path} exists; refusing to overwrite a keyring") from None
        else:
            os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Serialises writers across processes (server and CLI) so no change is lost.
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Keyring:
    """An open keyring. Obtain one with `Keyring.create`, `Keyring.open` or `Keyring.recover`.

    **Holds the master keys in memory for its lifetime.** Every change is written to the file
    at once, atomically, under a lock shared with other processes.
    """

    def __init__(
        self,
        path: Path,
        params: KdfParams,
        salt: bytes,
        passphrase_key: bytes,
        keyring_key: bytes,
        content: _Content,
    ) -> None:
        self._path = path
        self._params = params
        self._salt = salt
        self._passphrase_key = passphrase_key
        self._keyring_key = keyring_key
        self._content = content

    @classmethod
    def create(cls, path: Path, passphrase: str, *, kdf: KdfParams | None = None) -> Keyring:
        """Create a keyring at `path` with master key version 1, sealed under `passphrase`.

        Raises `KeyringError` if `path` exists (it is never overwritten) or the passphrase is
        empty.
        """
        path = Path(path)
        if path.exists():
            raise KeyringError(f"{path} exists; refusing to overwrite a keyring")
        params = kdf or KdfParams()
        params.check()
        salt = random_bytes(16)
        passphrase_key = _derive(passphrase, salt, params)
        ring = cls(
            path,
            params,
            salt,
            passphrase_key,
            random_bytes(_KEY_SIZE),
            _Content(1, {1: random_bytes(_KEY_SIZE)}, {}),
        )
        _atomic_write(path, ring._serialise(), exclusive=True)
        return ring

    @classmethod
    def open(cls, path: Path, passphrase: str) -> Keyring:
        """Open the keyring at `path` with `passphrase`.

        Raises `KeyringError` for a missing file, a damaged file ("corrupted") or a wrong
        passphrase ("wrong passphrase"); nothing is written.
        """
        path = Path(path)
        file = _File.read(path)
        params, salt = file.params()
        passphrase_key = _derive(passphrase, salt, params)
        keyring_key = file.unwrap_key(passphrase_key)
        return cls(path, params, salt, passphrase_key, keyring_key, file.content(keyring_key))

    @classmethod
    def recover(cls, path: Path, recovery_key: bytes, new_passphrase: str) -> Keyring:
        """Open the keyring at `path` with its recovery key and seal it under `new_passphrase`.

        The recovery key comes from `combine_shares`. Raises `KeyringError` if it does not
        open this keyring; the file is then left as it was.
        """
        path = Path(path)
        with _locked(path):
            file = _File.read(path)
            content = file.content(recovery_key)
            params, _ = file.params()
            salt = random_bytes(16)
            ring = cls(
                path, params, salt, _derive(new_passphrase, salt, params), recovery_key, content
            )
            _atomic_write(path, ring._serialise(), exclusive=False)
        return ring

    @property
    def path(self) -> Path:
        """Where the keyring file lives."""
        return self._path

    @property
    def location(self) -> str:
        """The keyring file's path (`KeyStore.location`)."""
        return str(self._path)

    @property
    def current_version(self) -> int:
        """The master key version new wraps use."""
        return self._content.current

    @property
    def versions(self) -> tuple[int, ...]:
        """Every master key version still in the ring, oldest first."""
        return tuple(sorted(self._content.masters))

    def recovery_key(self) -> bytes:
        """Return the 32-byte keyring key, to split with `split_secret`.

        **Whoever holds it (or k of its shares) and a copy of the keyring file holds every
        master key.**
        """
        return self._keyring_key

    def _serialise(self) -> bytes:
        return _document(
            self._params, self._salt, self._passphrase_key, self._keyring_key, self._content
        )

    def _read_file(self) -> tuple[bytes, _Content]:
        """Return the keyring key and content the file holds now, opened with this passphrase.

        Another process may have re-keyed the file (`rekey`, for new recovery shares) since this
        one opened it: the keyring key is therefore unwrapped afresh, never taken from memory.
        """
        file = _File.read(self._path)
        _, salt = file.params()
        if salt != self._salt:
            raise KeyringError(
                f"{self._path} was sealed under another passphrase since this process opened "
                "it; restart the process with the new passphrase"
            )
        key = file.unwrap_key(self._passphrase_key)
        return key, file.content(key)

    def reload(self) -> None:
        """Re-read the keyring file: master key versions and secrets other processes added.

        Raises `KeyringError` if the file is missing, damaged or sealed under another passphrase
        (this process's keys stay as they were then).
        """
        self._keyring_key, self._content = self._read_file()

    def _mutate(self, change: Callable[[_Content], None]) -> None:
        """Re-read the file under the lock, apply `change`, write it back atomically."""
        with _locked(self._path):
            key, content = self._read_file()
            change(content)
            self._keyring_key, self._content = key, content
            _atomic_write(self._path, self._serialise(), exclusive=False)

    def has_version(self, version: int) -> bool:
        """Return whether master key `version` is in the ring, re-reading the file if not here.

        Raises `KeyringError` if the file must be re-read and cannot be.
        """
        if version not in self._content.masters:
            self.reload()  # another process (`tvault keys rotate`) may have added it
        return version in self._content.masters

    def _wrap_key(self, version: int, salt: bytes) -> Aead:
        if not self.has_version(version):
            raise KeyringError(f"master key version {version} is not in this keyring")
        return Aead(hkdf_sha256(self._content.masters[version], salt, _WRAP_INFO))

    def wrap(self, identity: str, version: int | None = None) -> bytes:
        """Wrap the age `identity` under master key `version` (default: the ring's current one).

        The vault passes the version its database names current (`vault.keystate`), since a
        long-running process's idea of "current" may be older than the file's. Raises
        `ValueError` if `identity` is not an age X25519 identity, `KeyringError` if `version` is
        not in the ring even after re-reading the file.
        """
        scalar = age._parse_identity(identity)
        if version is None:
            version = self._content.current
        head = _WRAP_HEAD.pack(_WRAP_MAGIC, version)
        salt = random_bytes(_WRAP_SALT)
        # A fresh HKDF salt gives each wrap its own key, so the zero nonce is never reused.
        return head + salt + self._wrap_key(version, salt).seal(bytes(12), scalar, head)

    @staticmethod
    def version_of(wrapped: bytes) -> int:
        """Return the master key version `wrapped` was made with. Raises `KeyringError`."""
        if len(wrapped) != _WRAP_HEAD.size + _WRAP_SALT + _KEY_SIZE + 16:
            raise KeyringError("not a wrapped item identity")
        magic, version = _WRAP_HEAD.unpack_from(wrapped)
        if magic != _WRAP_MAGIC:
            raise KeyringError("not a wrapped item identity")
        return int(version)

    def unwrap(self, wrapped: bytes) -> str:
        """Return the age identity in `wrapped`, under whichever version made it.

        Raises `KeyringError` if the version is not in the ring or the bytes were altered.
        """
        version = self.version_of(wrapped)
        head = wrapped[: _WRAP_HEAD.size]
        salt = wrapped[_WRAP_HEAD.size : _WRAP_HEAD.size + _WRAP_SALT]
        try:
            scalar = self._wrap_key(version, salt).open(
                bytes(12), wrapped[_WRAP_HEAD.size + _WRAP_SALT :], head
            )
        except AuthenticationFailed:
            raise KeyringError("wrapped item identity is damaged or not from this ring") from None
        return age.identity_from_scalar(scalar)

    def rewrap(self, wrapped: bytes, version: int | None = None) -> bytes:
        """Return `wrapped` re-wrapped under `version` (default: the current one).

        Raises `KeyringError`.
        """
        target = self._content.current if version is None else version
        if self.version_of(wrapped) == target:
            self.unwrap(wrapped)  # still authenticate what we hand back
            return wrapped
        return self.wrap(self.unwrap(wrapped), target)

    def rotate(self) -> int:
        """Add a new master key version, make it current, and return it.

        Older versions stay until `retire`; call `rewrap` on every wrapped identity, then
        `retire` the old versions.
        """

        def change(content: _Content) -> None:
            new = max(content.masters) + 1
            content.masters[new] = random_bytes(_KEY_SIZE)
            content.current = new

        self._mutate(change)
        return self._content.current

    def retire(self, version: int) -> None:
        """Remove master key `version`. **Identities still wrapped under it become unreadable.**

        Raises `KeyringError` for the current version or one not in the ring.
        """

        def change(content: _Content) -> None:
            if version == content.current:
                raise KeyringError("the current master key version cannot be retired")
            if version not in content.masters:
                raise KeyringError(f"master key version {version} is not in this keyring")
            del content.masters[version]

        self._mutate(change)

    def has_secret(self, name: str) -> bool:
        """Return whether a secret named `name` is kept in the ring."""
        return name in self._content.secrets

    def secret(self, name: str) -> bytes:
        """Return the secret `name`. Raises `KeyringError` if there is none.

        A name this process has not seen is looked up again in the file: another process (a
        shred, say) may have added it since this ring was opened.
        """
        if name not in self._content.secrets:
            with _locked(self._path):
                self._content = _File.read(self._path).content(self._keyring_key)
        try:
            return self._content.secrets[name]
        except KeyError:
            raise KeyringError(f"no secret named {name!r} in this keyring") from None

    def add_secret(self, name: str, value: bytes) -> bytes:
        """Keep `value` under `name` unless the file already holds a secret of that name; return
        the secret kept. Under the file's lock, so two processes never both win."""
        if not name:
            raise ValueError("a secret needs a name")

        def change(content: _Content) -> None:
            content.secrets.setdefault(name, bytes(value))

        self._mutate(change)
        return self._content.secrets[name]

    def delete_secret(self, name: str) -> bool:
        """Remove the secret `name` from the file; return whether it was there.

        **What it sealed is lost** to anyone without an older copy of the keyring file.
        """
        found = False

        def change(content: _Content) -> None:
            nonlocal found
            found = content.secrets.pop(name, None) is not None

        self._mutate(change)
        return found

    def set_secret(self, name: str, value: bytes) -> None:
        """Keep `value` sealed in the ring under `name`, replacing any previous value."""
        if not name:
            raise ValueError("a secret needs a name")

        def change(content: _Content) -> None:
            content.secrets[name] = bytes(value)

        self._mutate(change)

    def change_passphrase(self, new_passphrase: str) -> None:
        """Seal the ring under `new_passphrase` (a fresh salt); recovery shares stay valid."""
        salt = random_bytes(16)
        key = _derive(new_passphrase, salt, self._params)
        with _locked(self._path):
            self._keyring_key, self._content = self._read_file()
            self._salt, self._passphrase_key = salt, key
            _atomic_write(self._path, self._serialise(), exclusive=False)

    def rekey(self) -> None:
        """Seal the ring's content under a fresh keyring key (same passphrase).

        `recovery_key` changes with it, so every recovery share made before no longer opens
        this file: call it before splitting anew (`tvault keys split`). **A copy of the file
        made before still opens with the old shares: replace such copies.**
        """
        with _locked(self._path):
            _, self._content = self._read_file()
            self._keyring_key = random_bytes(_KEY_SIZE)
            _atomic_write(self._path, self._serialise(), exclusive=False)
