"""An age file written in sessions (`keys.start_stream`, `keys.ChunkSealer`), as a resumable
upload writes a deposit, opens with the stock `age` tool (Debian's) to the same bytes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import keys
from tests.services import tool

CHUNK = keys.CHUNK_SIZE


@pytest.mark.parametrize("size", [1, CHUNK, 3 * CHUNK, 3 * CHUNK + 11])
def test_age_tool_opens_a_file_sealed_in_sessions(size: int, tmp_path: Path) -> None:
    identity, recipient = keys.generate_identity()
    (tmp_path / "key.txt").write_text(identity + "\n")
    data = bytes((i * 31 + 7) % 256 for i in range(size))
    start, key = keys.start_stream([recipient])
    whole = size - size % CHUNK if size % CHUNK else size - CHUNK
    sealed = (
        start
        + keys.ChunkSealer(key).seal(data[:whole])
        + keys.ChunkSealer(key, whole // CHUNK).seal(data[whole:], last=True)
    )
    (tmp_path / "object.age").write_bytes(sealed)
    opened = subprocess.run(
        [tool("age"), "-d", "-i", str(tmp_path / "key.txt"), str(tmp_path / "object.age")],
        capture_output=True,
        check=True,
    )
    assert opened.stdout == data
