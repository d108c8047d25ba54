"""The private plaintext copy the parser reads."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import plaintext_file


def test_private_and_removed(tmp_path: Path) -> None:
    with plaintext_file([b"declaraci", "ón".encode()], directory=tmp_path) as path:
        assert path.read_bytes() == "declaración".encode()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists() and not path.parent.exists()


def test_removed_when_the_caller_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), plaintext_file([b"x"], directory=tmp_path) as path:
        raise RuntimeError("extraction failed")
    assert not path.parent.exists()


def test_removed_when_the_source_fails(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first chunk"
        raise OSError("object store went away")

    with pytest.raises(OSError), plaintext_file(chunks(), directory=tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []
