"""A dead worker's private scratch directory goes at the next start of any process on the vault.

Not only the next worker: a server without one, or a command-line tool, opens the vault too
(`vault.compose.build`), and a plaintext copy must not wait in memory for a worker to start.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ingest.scratch import PRIVATE_PREFIX
from tests.unit.vault.conftest import PASSPHRASE, database_url, vault
from vault.compose import open_vault

# Fixtures: the vault, on SQLite and on PostgreSQL.
from vault.parts import Vault

__all__ = ["database_url", "vault"]


def test_opening_the_vault_removes_a_dead_workers_directory(
    vault: Vault, memory_scratch: Path
) -> None:
    dead_pid = _dead_pid()
    dead = memory_scratch / f"{PRIVATE_PREFIX}{dead_pid}-abc"
    alive = memory_scratch / f"{PRIVATE_PREFIX}{os.getpid()}-abc"
    for directory in (dead, alive):
        directory.mkdir(mode=0o700)
        (directory / "plaintext").write_bytes(b"words")
    settings = vault.settings.model_copy(update={"scratch_dir": memory_scratch})
    opened = open_vault(settings, PASSPHRASE)
    opened.close()
    assert not dead.exists()
    assert (alive / "plaintext").read_bytes() == b"words"  # a live process's is kept


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
