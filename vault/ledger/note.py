"""C2SP signed notes, tlog-checkpoint bodies and verifier keys, for Ed25519 log keys.

Specifications: https://c2sp.org/signed-note (v1.0.0), https://c2sp.org/tlog-checkpoint, and
the verifier key encoding of golang.org/x/mod/sumdb/note (`<name>+<hex key ID>+<base64 key>`),
which the transparency-log tools (Go checksum database, Sigsum, Trillian witnesses) all read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from vault.ledger.errors import LedgerError
from vault.ledger.ports import LogSigner

# signed-note: signature type byte 0x01 is Ed25519.
ED25519: Final = b"\x01"
# signed-note: each signature line starts with an em dash (U+2014) and a space.
SIGNATURE_PREFIX: Final = "\u2014 "
MAX_SIGNATURES: Final = 100
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")

# (public key, message, signature) -> valid? `keys.verify_ed25519` has this shape.
Ed25519Verify = Callable[[bytes, bytes, bytes], bool]


class NoteError(LedgerError):
    """A note, checkpoint or verifier key is malformed, or no trusted signature verifies."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The body of a C2SP tlog-checkpoint: origin, tree size, root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """Return the note text: `<origin>\\n<size>\\n<base64 root>\\n`."""
        check_name(self.origin, what="origin")
        if self.size < 0 or len(self.root) != 32:
            raise NoteError("a checkpoint needs a size >= 0 and a 32-byte root")
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def check_name(name: str, *, what: str = "key name") -> None:
    """Refuse a key name (or origin) with spaces or `+`. Raises `NoteError`."""
    # signed-note: key names MUST be non-empty and contain no Unicode spaces or plus signs.
    if not name or "+" in name or any(ch.isspace() for ch in name) or _CONTROL.search(name):
        raise NoteError(f"invalid {what} {name!r}: it must be non-empty, without spaces or '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4] (signed-note)."""
    check_name(name)
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """Return the verifier key `<name>+<hex key ID>+<base64(0x01 || public key)>`."""
    if len(public_key) != 32:
        raise NoteError("an Ed25519 public key is 32 bytes")
    encoded = base64.b64encode(ED25519 + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """Return `(name, public key)` of a verifier key. Raises `NoteError` if it is malformed.

    The key ID in the string must be the one the name and key give, so a mangled key is refused.
    """
    # The base64 key may itself contain '+': split off the name and the ID only.
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise NoteError("a verifier key is <name>+<8 hex digits>+<base64 key>")
    name, hex_id, encoded = parts
    raw = _b64(encoded)
    if len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError("the verifier key is not an Ed25519 key")
    public_key = raw[1:]
    if key_id(name, public_key).hex() != hex_id:
        raise NoteError("the verifier key's ID does not match its name and key")
    return name, public_key


def sign(text: str, name: str, signer: LogSigner) -> str:
    """Return the signed note of `text` with one Ed25519 signature line by `signer`.

    Raises `NoteError` if the text is not a valid note text or the name is invalid.
    """
    _check_text(text)
    signature = signer.sign(text.encode())
    if len(signature) != 64:
        raise NoteError("the signer did not return a 64-byte Ed25519 signature")
    encoded = base64.b64encode(key_id(name, signer.public_key_bytes()) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {encoded}\n"


def split(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its text and `(name, key ID, signature)` triples.

    Raises `NoteError` if the note is malformed (signed-note "Format").
    """
    if not note.endswith("\n") or _CONTROL.search(note):
        raise NoteError("malformed note")
    # The text is separated from the signatures by the last empty line.
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("malformed note: no signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    _check_text(text)
    lines = block.split("\n")[:-1]
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed note: no signatures, or too many")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed note: a signature line must start with an em dash")
        fields = line[len(SIGNATURE_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise NoteError("malformed note: bad signature line")
        name, encoded = fields
        check_name(name)
        raw = _b64(encoded)
        if len(raw) < 5:
            raise NoteError("malformed note: signature too short")
        signatures.append((name, raw[:4], raw[4:]))
    return text, signatures


def open_note(note: str, vkey: str, verify: Ed25519Verify) -> str:
    """Return the text of `note` if the key `vkey` signed it. Raises `NoteError` otherwise.

    Signatures by other keys are ignored (signed-note: verifiers MUST ignore unknown keys); a
    signature by this key that fails rejects the whole note.
    """
    name, public_key = parse_verifier_key(vkey)
    text, signatures = split(note)
    expected = key_id(name, public_key)
    verified = False
    for sig_name, sig_id, signature in signatures:
        if sig_name != name or sig_id != expected:
            continue
        if len(signature) != 64 or not verify(public_key, text.encode(), signature):
            raise NoteError(f"invalid signature for key {name}+{expected.hex()}")
        verified = True
    if not verified:
        raise NoteError("note has no verifiable signature by the log key")
    return text


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a tlog-checkpoint note text. Raises `NoteError` if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise NoteError("a checkpoint is at least three non-empty lines, each ending in newline")
    origin, size_line, root_line = lines[:3]
    # tlog-checkpoint: ASCII decimal, no leading zeroes (except the empty tree's "0").
    if not re.fullmatch(r"0|[1-9][0-9]*", size_line):
        raise NoteError(f"bad checkpoint size {size_line!r}")
    root = _b64(root_line)
    if len(root) != 32:
        raise NoteError("a checkpoint root is 32 bytes")
    checkpoint = Checkpoint(origin=origin, size=int(size_line), root=root)
    if lines[3:-1]:
        raise NoteError("checkpoint extension lines are not accepted by this log")
    return checkpoint


def _check_text(text: str) -> None:
    if not text.endswith("\n") or _CONTROL.search(text) or text.startswith("\n"):
        raise NoteError("malformed note text: it must end in a newline, with no control chars")
    if "\n\n" in text:
        # Allowed by signed-note, but a checkpoint never has one; refusing keeps parsing simple.
        raise NoteError("malformed note text: empty lines are not supported")
    if any(line.startswith(SIGNATURE_PREFIX) for line in text.split("\n")):
        raise NoteError("malformed note text: a line looks like a signature")


def _b64(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("bad base64") from exc
    # Refuse non-canonical encodings, so one key or root has exactly one spelling.
    if base64.b64encode(raw).decode() != encoded:
        raise NoteError("non-canonical base64")
    return raw
