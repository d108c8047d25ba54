"""Destructive commands confirm: `get -o` does not overwrite a file without `--force`, and a
shred (asked or approved) or a key retirement is typed again, or `--yes` in scripts; with no
terminal and no `--yes` they refuse with exit 2 and destroy nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.vault.cli_support import Run, cli_runner
from vault.accounts import add_user
from vault.cli import common
from vault.parts import Vault
from vault.rotation import rotate

BODY = b"Testimony recorded at the clinic.\n" * 50


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
    return cli_runner(vault, monkeypatch)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # A person at a terminal: the CLI test runner's stdin is never a tty.
    monkeypatch.setattr(common, "terminal", lambda: True)


def _deposit(run: Run, tmp_path: Path) -> str:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    source = tmp_path / "testimony.txt"
    source.write_bytes(BODY)
    done = run("tina", "deposit", str(source), "--case", case, "--consent", "therapy", "--json")
    assert done.exit_code == 0, done.output
    item: str = json.loads(done.stdout)["id"]
    return item


def _shred_asked(run: Run, tmp_path: Path) -> tuple[str, str]:
    item = _deposit(run, tmp_path)
    asked = run("admin", "keys", "shred", item, "--reason", "duplicate", "--yes")
    assert asked.exit_code == 0, asked.output
    return item, asked.stdout.strip()


def _state(run: Run, approval: str) -> str:
    state: str = json.loads(run("cleo", "approvals", "show", approval, "--json").stdout)["state"]
    return state


def test_get_does_not_overwrite_a_file_without_force(run: Run, tmp_path: Path) -> None:
    item = _deposit(run, tmp_path)
    existing = tmp_path / "notes.txt"
    existing.write_bytes(b"someone's notes")
    refused = run("tina", "get", item, "-o", str(existing))
    assert refused.exit_code == 2
    assert refused.stderr == f"tvault: -o: {existing} exists; pass --force to replace it\n"
    assert existing.read_bytes() == b"someone's notes"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tvault-")] == []
    replaced = run("tina", "get", item, "-o", str(existing), "--force")
    assert replaced.exit_code == 0, replaced.output
    assert existing.read_bytes() == BODY


def test_approving_a_shred_without_a_terminal_or_yes_refuses(run: Run, tmp_path: Path) -> None:
    item, approval = _shred_asked(run, tmp_path)
    refused = run("cleo", "approvals", "approve", approval)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "pass --yes" in refused.stderr, refused.stderr
    assert _state(run, approval) == "pending"
    assert run("tina", "get", item, "-o", str(tmp_path / "still.txt")).exit_code == 0
    done = run("cleo", "approvals", "approve", approval, "--yes")
    assert done.exit_code == 0, done.output
    assert _state(run, approval) == "done"
    assert run("tina", "get", item, "-o", str(tmp_path / "gone.txt")).exit_code == 1


def test_approving_a_shred_asks_for_the_item_id_again(
    run: Run, tmp_path: Path, terminal: None
) -> None:
    item, approval = _shred_asked(run, tmp_path)
    wrong = run("cleo", "approvals", "approve", approval, input="abc\n")
    assert wrong.exit_code == 2
    assert f"crypto-shreds item {item}" in wrong.stderr and "reason: duplicate" in wrong.stderr
    assert _state(run, approval) == "pending"
    right = run("cleo", "approvals", "approve", approval, input=f"{item}\n")
    assert right.exit_code == 0, right.output
    assert _state(run, approval) == "done"


def test_asking_for_a_shred_confirms_too(run: Run, tmp_path: Path, terminal: None) -> None:
    item = _deposit(run, tmp_path)
    wrong = run("admin", "keys", "shred", item, "--reason", "duplicate", input="no\n")
    assert wrong.exit_code == 2
    assert run("cleo", "approvals", "list", "--state", "pending").stdout.strip() == ""
    right = run("admin", "keys", "shred", item, "--reason", "duplicate", input=f"{item}\n")
    assert right.exit_code == 0, right.output
    assert right.stdout.strip().splitlines()[-1] in run("cleo", "approvals", "list").stdout


def test_asking_for_a_shred_without_a_terminal_or_yes_refuses(run: Run, tmp_path: Path) -> None:
    item = _deposit(run, tmp_path)
    refused = run("admin", "keys", "shred", item, "--reason", "duplicate")
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert run("cleo", "approvals", "list").stdout.strip() == ""


def test_approving_what_can_be_undone_asks_nothing(run: Run, tmp_path: Path) -> None:
    item = _deposit(run, tmp_path)
    assert run("admin", "hold", item).exit_code == 0
    lift = run("admin", "hold", item, "--lift").stdout.strip()
    done = run("cleo", "approvals", "approve", lift)
    assert done.exit_code == 0, done.output


def test_approving_a_key_retirement_asks_for_the_versions_again(
    run: Run, vault: Vault, terminal: None
) -> None:
    approval = rotate(vault, "admin", retire=True).approval
    assert approval is not None
    wrong = run("cleo", "approvals", "approve", approval, input="2\n")
    assert wrong.exit_code == 2
    assert "retires master key version(s) 1" in wrong.stderr
    assert _state(run, approval) == "pending"
    assert 1 in vault.keyring.versions
    right = run("cleo", "approvals", "approve", approval, input="1\n")
    assert right.exit_code == 0, right.output
    assert _state(run, approval) == "done"


def test_get_checks_the_bytes_it_received_against_the_announced_digest(
    run: Run, vault: Vault, tmp_path: Path
) -> None:
    # `tvault get` hashes the bytes as they arrive (one pass); a mismatch leaves no file.
    from sqlalchemy import update

    from vault.db import Item

    item = _deposit(run, tmp_path)
    with vault.sessions.begin() as session:
        session.execute(update(Item).where(Item.id == item).values(sha256="0" * 64))
    target = tmp_path / "got.txt"
    refused = run("tina", "get", item, "-o", str(target))
    assert refused.exit_code == 1
    assert "SHA-256 mismatch" in refused.stderr and "nothing written" in refused.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tvault-")] == []


def test_get_that_cannot_write_says_so_in_one_line_and_leaves_no_file(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills up after the first piece: the writing thread's error reaches the person as
    # one line (no traceback), and neither FILE nor the temporary file is left behind.
    import errno
    import os

    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    source = tmp_path / "interview.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024))  # several pieces from the socket
    done = run("tina", "deposit", str(source), "--case", case, "--consent", "therapy", "--json")
    assert done.exit_code == 0, done.output
    item = json.loads(done.stdout)["id"]
    write = os.write
    written: list[int] = []

    def full_disk(fd: int, data: bytes) -> int:
        if "/.tvault-" not in os.readlink(f"/proc/self/fd/{fd}"):
            return write(fd, data)
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(write(fd, data))
        return written[0]

    monkeypatch.setattr(os, "write", full_disk)
    target = tmp_path / "got.bin"
    refused = run("tina", "get", item, "-o", str(target))
    assert refused.exit_code == 1
    assert refused.stderr == (
        "tvault: cannot write the download: No space left on device; nothing written\n"
    )
    assert written, "the fault was never reached"
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tvault-")] == []
