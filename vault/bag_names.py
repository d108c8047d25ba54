"""Safe in-bag file names: what any tar, file system and manifest reader accepts as one name."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

MAX_NAME_BYTES: Final = 200
"""A name's UTF-8 length at most: under every file system's 255 bytes, with room to spare for
the suffixes tools add (`.part`, `~`)."""

# Windows and most FAT/exFAT/NTFS drivers refuse these anywhere in a name; `/` and `\` split
# paths; `%` is kept out because RFC 8493 2.1.3 percent-encodes it in manifests, which
# `sha256sum -c` would not undo; `|` separates values in the Uwazi CSV.
_FORBIDDEN: Final = re.compile(r'[/\\<>:"|?*%]')
# Control, format (bidirectional overrides can disguise an extension), surrogate, private and
# unassigned code points, and the Unicode line and paragraph separators.
_BAD_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_RESERVED: Final = re.compile(r"(?i)^(con|prn|aux|nul|com[0-9]|lpt[0-9]|conin\$|conout\$)$")
_MAX_EXTENSION: Final = 16


def safe_filename(name: str, *, fallback: str = "file") -> str:
    """Return `name` made safe as one file name inside a bag, for any tar or file system.

    NFC-normalised; path separators, characters Windows refuses, `%`, `|`, control and format
    characters replaced by `_`; no leading dot (no hidden files, never `.` or `..`), no leading
    or trailing space, no trailing dot; Windows device names (CON, NUL, COM1...) prefixed with
    `_`; at most `MAX_NAME_BYTES` UTF-8 bytes, shortened before its extension. A name left
    empty becomes `fallback` (itself made safe the same way).
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join("_" if unicodedata.category(ch) in _BAD_CATEGORIES else ch for ch in text)
    text = _FORBIDDEN.sub("_", text)
    text = _shorten(text.strip().rstrip(". "))
    if text.startswith("."):
        text = "_" + text[1:]
    stem, dot, _ = text.rpartition(".")
    if _RESERVED.match(stem if dot else text):
        text = _shorten("_" + text)
    if not text:
        return safe_filename(fallback) if fallback else "file"
    return text


def _shorten(text: str) -> str:
    """Cut `text` to `MAX_NAME_BYTES` UTF-8 bytes at a character boundary, keeping a short
    extension."""
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    stem, dot, extension = text.rpartition(".")
    if not dot or not stem or len(extension.encode("utf-8")) > _MAX_EXTENSION:
        stem, extension = text, ""
    suffix = "." + extension if extension else ""
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    encoded = stem.encode("utf-8")[:budget]
    # Drop a character cut in half, and any combining mark left without its base.
    cut = encoded.decode("utf-8", "ignore").rstrip(". ")
    while cut and unicodedata.combining(cut[-1]):
        cut = cut[:-1]
    return unicodedata.normalize("NFC", cut + suffix)
