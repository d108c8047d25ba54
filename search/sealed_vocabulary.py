"""A `VocabularyStore` that keeps the vocabulary in one age-sealed file (DESIGN.md promise 1)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import keys
from search.errors import IndexFormatError


class SealedVocabularyFile:
    """Keeps the vocabulary at `path`, sealed with age to the recipient of `identity`.

    Writes go to a temporary file, are fsynced, then renamed over `path`, so a crash leaves the
    old or the new vocabulary, never half of one.
    """

    def __init__(self, path: Path, identity: str) -> None:
        self._path = Path(path)
        self._identity = identity
        self._recipient = keys.recipient_of(identity)

    def load(self) -> bytes | None:
        """Return the unsealed bytes, or None if no file exists yet.

        Raises `IndexFormatError` if the file cannot be opened with this identity."""
        if not self._path.exists():
            return None
        out = io.BytesIO()
        try:
            with open(self._path, "rb") as src:
                keys.unseal(src, out, self._identity)
        except keys.UnsealError as exc:
            raise IndexFormatError("the vocabulary file cannot be opened with this key") from exc
        return out.getvalue()

    def save(self, data: bytes) -> None:
        """Seal `data` and replace the file durably."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        with open(tmp, "wb") as dst:
            keys.seal(io.BytesIO(data), dst, [self._recipient])
            dst.flush()
            os.fsync(dst.fileno())
        tmp.replace(self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
