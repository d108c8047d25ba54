"""age v1 sealing against the stock `age` and `age-keygen` tools, both ways: vectors, sizes
around chunk and read-batch boundaries, any write sizes (the pure tests: tests/unit/keys)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

import keys
from keys import age as age_module
from tests.services import tool
from tests.unit.keys.age_support import CHUNK, key_file, payload_start, seal_bytes, unseal_checked

__all__ = ["key_file"]

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "age"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 5]
# Sizes around `seal`'s and `unseal`'s read batches (`_READ_CHUNKS` chunks per read).
BATCH = age_module._READ_CHUNKS
CHUNK_COUNTS = [BATCH - 1, BATCH, BATCH + 1, 2 * BATCH - 1, 2 * BATCH, 2 * BATCH + 1]
BATCH_SIZES = sorted({n * CHUNK + d for n in CHUNK_COUNTS for d in (-1, 0, 1)})


def test_generated_identity_matches_age_keygen(key_file: tuple[Path, str, str]) -> None:
    path, identity, recipient = key_file
    # age-keygen ships in the same package as age, and CI requires "age" (TVAULT_TEST_REQUIRE).
    keygen = Path(tool("age")).with_name("age-keygen")
    assert keygen.exists(), f"{keygen} is missing although age is installed"
    derived = subprocess.run(
        [str(keygen), "-y", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert derived == recipient == keys.recipient_of(identity)
    assert identity.startswith("AGE-SECRET-KEY-1") and identity == identity.upper()


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_vector_opens_with_age_tool(name: str) -> None:
    result = subprocess.run(
        [tool("age"), "-d", "-i", str(VECTORS / "identity.txt"), str(VECTORS / name)],
        capture_output=True,
        check=True,
    )
    assert hashlib.sha256(result.stdout).hexdigest() == MANIFEST["files"][name]["sha256"]


@pytest.mark.parametrize("size", SIZES)
def test_age_tool_opens_what_keys_seals(size: int, key_file: tuple[Path, str, str]) -> None:
    path, _, recipient = key_file
    data = os.urandom(size)
    result = subprocess.run(
        [tool("age"), "-d", "-i", str(path)],
        input=seal_bytes(data, [recipient]),
        capture_output=True,
        check=True,
    )
    assert result.stdout == data


@pytest.mark.parametrize("size", SIZES)
def test_keys_opens_what_age_tool_seals(size: int, key_file: tuple[Path, str, str]) -> None:
    _, identity, recipient = key_file
    data = os.urandom(size)
    sealed = subprocess.run(
        [tool("age"), "-r", recipient], input=data, capture_output=True, check=True
    ).stdout
    assert unseal_checked(sealed, identity) == data
    assert b"".join(keys.open_stream(io.BytesIO(sealed), identity)) == data


@pytest.mark.parametrize("piece", [1, 1000, CHUNK, CHUNK + 3, 5 * CHUNK])
def test_sealer_accepts_any_write_sizes(piece: int, key_file: tuple[Path, str, str]) -> None:
    path, _, recipient = key_file
    data = os.urandom(4 * CHUNK + 17 if piece > 1 else 3 * CHUNK)
    out = io.BytesIO()
    with keys.Sealer(out, [recipient]) as sealer:
        for i in range(0, len(data), piece):
            sealer.write(memoryview(data)[i : i + piece])
    assert sealer.size == len(data)
    assert out.getvalue() == out.getvalue()  # the sealer leaves dst open
    result = subprocess.run(
        [tool("age"), "-d", "-i", str(path)], input=out.getvalue(), capture_output=True, check=True
    )
    assert result.stdout == data


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_sizes_around_batch_boundaries_round_trip(
    size: int, key_file: tuple[Path, str, str]
) -> None:
    path, identity, recipient = key_file
    data = os.urandom(size)
    sealed = seal_bytes(data, [recipient])
    # One chunk per 64 KiB, the last one short or full, never an empty one after data.
    chunks = max(1, -(-size // CHUNK))
    assert len(sealed) - payload_start(sealed) == size + 16 * chunks
    out = io.BytesIO()
    assert keys.unseal(io.BytesIO(sealed), out, identity) == size
    assert out.getvalue() == data
    assert b"".join(keys.open_stream(io.BytesIO(sealed), identity)) == data
    # The stock tool checks the last-chunk flags independently.
    opened = subprocess.run(
        [tool("age"), "-d", "-i", str(path)], input=sealed, capture_output=True, check=True
    )
    assert opened.stdout == data
    made_by_age = subprocess.run(
        [tool("age"), "-r", recipient], input=data, capture_output=True, check=True
    ).stdout
    out = io.BytesIO()
    assert keys.unseal(io.BytesIO(made_by_age), out, identity) == size
    assert out.getvalue() == data
