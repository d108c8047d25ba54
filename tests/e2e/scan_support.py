"""The plaintext scan of DESIGN.md promise 1: markers searched for in every file, in every
encoding they could take (used by test_no_plaintext and test_ingest)."""

from __future__ import annotations

import base64
from pathlib import Path


def encodings(marker: str) -> list[bytes]:
    """Return `marker` as plain UTF-8, UTF-16 (LE, BE) and base64 at each of 3 alignments."""
    plain = marker.encode("utf-8")
    forms = [plain, marker.encode("utf-16-le"), marker.encode("utf-16-be")]
    for shift in range(3):
        # Base64 of the marker preceded by `shift` bytes: keep only the characters that depend
        # on the marker alone, so the form matches wherever the marker sits in a longer text.
        encoded = base64.b64encode(b"\x00" * shift + plain)
        start = {0: 0, 1: 2, 2: 3}[shift]
        usable = (len(encoded) - start) // 4 * 4 - 4
        forms.append(encoded[start : start + usable])
        forms.append(base64.urlsafe_b64encode(b"\x00" * shift + plain)[start : start + usable])
    return forms


def findings(paths: list[Path], markers: dict[str, str]) -> list[str]:
    found = []
    for path in paths:
        data = path.read_bytes()
        for where, marker in markers.items():
            for form in encodings(marker):
                if form in data:
                    found.append(f"{where} marker in {path} as {form!r}")
    return found


def every_file(home: Path, log: Path) -> list[Path]:
    files = [p for p in home.rglob("*") if p.is_file()]
    return [*files, log]
