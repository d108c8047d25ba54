"""The `Content-Disposition` of a download: a safe file name (RFC 6266, RFC 8187 `filename*`).

The original file name is sealed data (DESIGN.md promise 1): it may name the survivor. It is
sent only to a principal who may read it (the caller passes None otherwise, and the item id is
used instead), it is never logged (the access log records method, path and status only), and
it is cleaned here so that no client can be led to write outside its download directory or to
show a misleading name: no directory part, no control or bidirectional-override characters,
no leading dot, at most 255 bytes.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

MAX_BYTES = 255  # most file systems' limit for one name


def safe_filename(name: str) -> str:
    """Return `name` as a bare file name a client may use as it is ('' when nothing is left):
    the last path component (either slash), without control, format (bidi overrides) or
    separator characters other than the plain space, without leading dots or spaces and
    trailing dots or spaces, cut to `MAX_BYTES` UTF-8 bytes on a character boundary."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c for c in name if c == " " or unicodedata.category(c)[0] not in ("C", "Z"))
    kept = kept.strip(" ").lstrip(".").rstrip(". ")
    encoded = kept.encode("utf-8")[:MAX_BYTES]
    return encoded.decode("utf-8", "ignore")


def attachment(filename: str | None, fallback: str) -> str:
    """Return the `Content-Disposition` value for a download named `filename` (None: not to be
    shown to this caller), else `fallback` (the item id). Both forms are given: an ASCII
    `filename` for old clients and the exact UTF-8 name in `filename*` (RFC 6266 4.3)."""
    name = safe_filename(filename or "") or fallback
    ascii_name = "".join(c if c.isascii() and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
