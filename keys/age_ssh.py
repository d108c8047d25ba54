"""The age `ssh-ed25519` recipient type: seal to an OpenSSH Ed25519 key, open with its key file.

Not part of the C2SP age spec itself but of the reference implementation (`agessh` in
filippo.io/age, described in its README): the Ed25519 key is mapped to Curve25519, an X25519
exchange is made, and its result is "tweaked" by a second X25519 with a scalar derived from
the SSH public key, so the stanza is bound to that one SSH key. The stock `age` tool seals to
`-r "ssh-ed25519 AAAA..."` and opens with `-i ~/.ssh/id_ed25519`; files made here and there
open in both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from keys._primitives import TAG_SIZE, Aead, AuthenticationFailed, X25519Secret, hkdf_sha256
from keys._wire import Reader, WireError, ssh_string

__all__ = [
    "STANZA_TYPE",
    "SshIdentity",
    "SshRecipient",
    "is_identity",
    "parse_identity",
    "parse_recipient",
]

STANZA_TYPE = b"ssh-ed25519"
_LABEL = b"age-encryption.org/v1/ssh-ed25519"
_KEY_TYPE = b"ssh-ed25519"
_FILE_KEY_SIZE = 16
_ZERO_NONCE = bytes(12)
_PEM_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
_PEM_END = "-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"

# Curve25519 / edwards25519 (RFC 7748 4.1, RFC 8032 5.1): the field prime and the twisted
# Edwards constant d = -121665/121666.
_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P


def _b64(data: bytes) -> bytes:
    # age encodes stanza arguments as standard base64 without padding.
    return base64.b64encode(data).rstrip(b"=")


def _tag(blob: bytes) -> bytes:
    """The stanza's first argument: the first 4 bytes of SHA-256 of the SSH public key blob,
    so an identity skips stanzas for other keys without a trial decryption."""
    return _b64(hashlib.sha256(blob).digest()[:4])


def _tweak(blob: bytes) -> bytes:
    # agessh: HKDF-SHA-256 with an empty secret, the SSH key blob as salt. Mixing it into the
    # shared secret binds the stanza to the SSH key, not only to its Curve25519 image.
    return hkdf_sha256(b"", blob, _LABEL)


def _montgomery(public: bytes) -> bytes:
    """Return the Curve25519 u-coordinate of the Ed25519 public key `public` (RFC 7748 4.1:
    u = (1 + y) / (1 - y)). Raises `ValueError` if `public` is not a point of the curve."""
    if len(public) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    sign = public[31] >> 7
    if y >= _P:
        raise ValueError("not a canonical Ed25519 public key")
    # RFC 8032 5.1.3: the point decompresses only if x^2 = (y^2 - 1) / (d y^2 + 1) is a square.
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if pow(x2, (_P - 1) // 2, _P) not in (0, 1) or (x2 == 0 and sign):
        raise ValueError("not an Ed25519 public key (the point is not on the curve)")
    if y == 1:
        raise ValueError("the Ed25519 identity point is not a usable key")
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    return u.to_bytes(32, "little")


@dataclass(frozen=True, slots=True)
class SshRecipient:
    """An `ssh-ed25519` recipient: the SSH public key blob and its Curve25519 point."""

    blob: bytes
    point: bytes

    def line(self) -> str:
        """Return the key as an OpenSSH public key line, without a comment."""
        return "ssh-ed25519 " + base64.b64encode(self.blob).decode("ascii")

    def stanza(self, file_key: bytes, ephemeral: bytes) -> bytes:
        """Return the stanza that wraps `file_key` to this key, with the fresh 32-byte secret
        `ephemeral` (one per file and recipient, so the zero nonce is safe: each wrapping key
        is used exactly once)."""
        secret = X25519Secret(ephemeral)
        share = secret.public
        shared = X25519Secret(_tweak(self.blob)).shared(secret.shared(self.point))
        wrap_key = hkdf_sha256(shared, share + self.point, _LABEL)
        body = _b64(Aead(wrap_key).seal(_ZERO_NONCE, file_key))
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        if not lines or len(lines[-1]) == 64:
            lines.append(b"")
        head = b"-> ssh-ed25519 " + _tag(self.blob) + b" " + _b64(share) + b"\n"
        return head + b"".join(line + b"\n" for line in lines)


def parse_recipient(text: str) -> SshRecipient:
    """Parse an OpenSSH public key line `ssh-ed25519 AAAA... [comment]`.

    Raises `ValueError` naming the problem if it is not a well-formed Ed25519 key.
    """
    fields = text.strip().split()
    if len(fields) < 2 or fields[0] != "ssh-ed25519":
        raise ValueError("not an OpenSSH Ed25519 public key (ssh-ed25519 AAAA...)")
    try:
        blob = base64.b64decode(fields[1], validate=True)
        reader = Reader(blob)
        key_type, public = reader.string(), reader.string()
        reader.done()
    except (binascii.Error, WireError):
        raise ValueError("malformed ssh-ed25519 public key") from None
    if key_type != _KEY_TYPE or len(public) != 32:
        raise ValueError("malformed ssh-ed25519 public key")
    point = _montgomery(public)
    try:
        # A low-order point would make every exchange all-zero: refuse it now, not at seal time.
        X25519Secret(hashlib.sha256(blob).digest()).shared(point)
    except ValueError:
        raise ValueError("the ssh-ed25519 key is a low-order point") from None
    return SshRecipient(blob=blob, point=point)


class SshIdentity:
    """The secret half: an unencrypted OpenSSH Ed25519 private key, mapped to Curve25519."""

    def __init__(self, seed: bytes, public: bytes) -> None:
        self.blob = ssh_string(_KEY_TYPE) + ssh_string(public)
        # agessh: the X25519 scalar is the first half of SHA-512(seed), as Ed25519 derives its
        # own scalar (RFC 8032 5.1.5); X25519 clamps it the same way.
        self._secret = X25519Secret(hashlib.sha512(seed).digest()[:32])
        self._tag = _tag(self.blob)
        self._tweak = X25519Secret(_tweak(self.blob))
        if self._secret.public != _montgomery(public):
            raise ValueError("the OpenSSH private key does not match its public key")

    def __repr__(self) -> str:
        return "SshIdentity(<secret>)"

    def recipient(self) -> str:
        """Return the `ssh-ed25519 AAAA...` line of this identity's public key."""
        return "ssh-ed25519 " + base64.b64encode(self.blob).decode("ascii")

    def unwrap(self, args: list[bytes], body: bytes) -> bytes | None:
        """Return the file key of one stanza, or None if it is not for this key.

        Raises `ValueError` if the stanza is for this key but malformed (the age spec makes a
        malformed stanza of a known type fatal).
        """
        if not args or args[0] != STANZA_TYPE:
            return None
        if len(args) != 3 or len(body) != _FILE_KEY_SIZE + TAG_SIZE:
            raise ValueError("malformed ssh-ed25519 stanza")
        if args[1] != self._tag:
            return None
        share = _decode_share(args[2])
        shared = self._tweak.shared(self._secret.shared(share))
        wrap_key = hkdf_sha256(shared, share + self._secret.public, _LABEL)
        try:
            return Aead(wrap_key).open(_ZERO_NONCE, body)
        except AuthenticationFailed:
            return None


def _decode_share(arg: bytes) -> bytes:
    try:
        share = base64.b64decode(arg + b"=" * (-len(arg) % 4), validate=True)
    except binascii.Error:
        raise ValueError("malformed ssh-ed25519 stanza") from None
    if len(share) != 32 or _b64(share) != arg:
        raise ValueError("malformed ssh-ed25519 stanza")
    return share


def is_identity(text: str) -> bool:
    """Say whether `text` looks like an OpenSSH private key file (to pick the parser)."""
    return _PEM_BEGIN in text


def parse_identity(text: str) -> SshIdentity:
    """Parse an OpenSSH private key file holding one unencrypted Ed25519 key.

    Raises `ValueError` naming the problem: not such a file, another key type, or protected by
    a passphrase (remove it on a copy kept offline: `ssh-keygen -p -N "" -f COPY`).
    """
    lines = [line.strip() for line in text.strip().splitlines()]
    try:
        start, end = lines.index(_PEM_BEGIN), lines.index(_PEM_END)
    except ValueError:
        raise ValueError("not an OpenSSH private key file") from None
    try:
        data = base64.b64decode("".join(lines[start + 1 : end]), validate=True)
    except binascii.Error:
        raise ValueError("malformed OpenSSH private key file") from None
    if not data.startswith(_OPENSSH_MAGIC):
        raise ValueError("not an openssh-key-v1 private key")
    try:
        reader = Reader(data[len(_OPENSSH_MAGIC) :])
        cipher, kdf, _options = reader.string(), reader.string(), reader.string()
        if cipher != b"none" or kdf != b"none":
            raise ValueError(
                "the OpenSSH key is protected by a passphrase; remove it on an offline copy "
                '(ssh-keygen -p -N "" -f COPY) or use an age identity'
            )
        if reader.uint32() != 1:
            raise ValueError("the OpenSSH key file must hold exactly one key")
        outer = reader.string()
        private = Reader(reader.string())
        reader.done()
        if private.uint32() != private.uint32():
            raise ValueError("malformed OpenSSH private key (check values differ)")
        key_type = private.string()
        if key_type != _KEY_TYPE:
            raise ValueError(
                f"the OpenSSH key is {key_type.decode('ascii', 'replace')}, not ssh-ed25519"
            )
        public, secret = private.string(), private.string()
        private.string()  # comment
    except WireError:
        raise ValueError("malformed OpenSSH private key file") from None
    if len(public) != 32 or len(secret) != 64 or secret[32:] != public:
        raise ValueError("malformed OpenSSH Ed25519 private key")
    if outer != ssh_string(_KEY_TYPE) + ssh_string(public):
        raise ValueError("the OpenSSH key file's public key does not match its private key")
    return SshIdentity(secret[:32], public)
