"""Duplicates as `tvault deposit` and `tvault ingest` report them (docs/usage.md, "Duplicates").

`deposit` stores a second copy and names the earlier item on stderr (or refuses with
`--refuse-duplicates`); `ingest` skips files the case already holds, and second copies inside
the folder, unless `--allow-duplicates`. (Retries and resuming: tests/e2e/test_deposit_retries.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.unit.vault.cli_support import Run, cli_runner
from vault.db import Item
from vault.parts import Vault


@pytest.fixture
def database_url() -> None:
    """SQLite only: the API's duplicate rules run on both databases in test_idempotency.py."""
    return None


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    return cli_runner(vault, monkeypatch)


def _case(run: Run) -> str:
    made = run("tina", "cases", "create", "Case of the river")
    assert made.exit_code == 0, made.output
    return made.stdout.strip()


def _count(vault: Vault, case: str) -> int:
    with vault.sessions() as session:
        return len(list(session.scalars(select(Item.id).where(Item.case_id == case))))


def test_deposit_stores_a_second_copy_and_names_the_first(
    vault: Vault, run: Run, tmp_path: Path
) -> None:
    case = _case(run)
    source = tmp_path / "testimonio.txt"
    source.write_bytes(b"Testimonio grabado en la clinica.\n" * 40)
    deposit = ("deposit", str(source), "--case", case, "--consent", "therapy")
    first = run("tina", *deposit, "--json")
    assert first.exit_code == 0, first.output
    first_id = json.loads(first.stdout)["id"]
    assert "same SHA-256" not in first.stderr

    second = run("tina", *deposit, "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["duplicate_of"] == first_id
    assert f"item {first_id} of this case has the same SHA-256" in second.stderr
    assert _count(vault, case) == 2

    refused = run("tina", *deposit, "--refuse-duplicates")
    assert refused.exit_code == 1
    assert refused.stdout == "" and first_id in refused.stderr
    assert _count(vault, case) == 2


def test_ingest_skips_duplicates_unless_allowed(vault: Vault, run: Run, tmp_path: Path) -> None:
    case = _case(run)
    known = tmp_path / "known.txt"
    known.write_bytes(b"already in the case")
    first = run("tina", "deposit", str(known), "--case", case, "--consent", "therapy", "--json")
    first_id = json.loads(first.stdout)["id"]
    folder = tmp_path / "carpeta"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"already in the case")
    (folder / "b.txt").write_bytes(b"new testimony")
    (folder / "c.txt").write_bytes(b"new testimony")  # a copy inside the folder
    ingest = ("ingest", str(folder), "--case", case, "--consent", "therapy")

    done = run("tina", *ingest, "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    [b] = summary["deposited"]
    assert b["file"] == "b.txt"
    assert summary["skipped"] == [
        {"file": "a.txt", "duplicate_of": first_id},
        {"file": "c.txt", "duplicate_of": b["id"]},
    ]
    assert _count(vault, case) == 2

    human = run("tina", *ingest)
    assert human.exit_code == 0
    assert "deposited 0 of 3 files; 0 failed; 3 skipped as duplicates" in human.stdout
    assert f"skipped: a.txt: same SHA-256 as item {first_id}" in human.stdout

    allowed = run("tina", *ingest, "--allow-duplicates", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert len(json.loads(allowed.stdout)["deposited"]) == 3
    assert _count(vault, case) == 5
