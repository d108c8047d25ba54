"""File names and empty files that cannot become an item (issue 18 point 9: a clear error,
nothing changed). A name that is not UTF-8 text (bytes a Latin-1 system wrote, say) cannot be
carried in a header, a JSON document or a bag's pax header; an empty file is no testimony."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.unit.vault.cli_support import Run, cli_runner
from vault import ledger
from vault.db import Item
from vault.deposit import parse_request
from vault.errors import BadField
from vault.parts import Vault

# `testimonio_á.pdf` as a Latin-1 system names it: the byte 0xE1 alone is not UTF-8.
LATIN1 = os.fsdecode(b"testimonio_\xe1.pdf")


@pytest.fixture
def database_url() -> None:
    """The CLI is the same on either database; deposits run on both in test_deposit.py."""
    return None


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    return cli_runner(vault, monkeypatch)


def counts(vault: Vault) -> tuple[int, int]:
    """Items and ledger entries: what a refused deposit must leave unchanged."""
    with vault.sessions() as session:
        items = session.scalar(select(func.count()).select_from(Item)) or 0
        return items, ledger.size(session)


def since(vault: Vault, before: tuple[int, int]) -> list[str]:
    """The actions of the ledger entries appended after `before` was taken."""
    with vault.sessions() as session:
        return [e.action for e in ledger.entries(session)][before[1] :]


def _case(run: Run) -> str:
    made = run("tina", "cases", "create", "Case of the river")
    assert made.exit_code == 0, made.output
    return str(made.stdout.strip())


def test_a_file_name_that_is_not_utf8_is_refused_before_anything_is_sent(
    vault: Vault, run: Run, tmp_path: Path
) -> None:
    case = _case(run)
    source = tmp_path / LATIN1
    source.write_bytes(b"Testimonio.")
    before = counts(vault)
    result = run("tina", "deposit", str(source), "--case", case, "--consent", "therapy")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "testimonio_\\xe1.pdf: the file name is not UTF-8 text" in result.stderr
    assert "rename" in result.stderr
    # Nothing was sent: the one new ledger entry is the test's own token for `run`.
    assert counts(vault)[0] == before[0]
    assert since(vault, before) == [ledger.actions.TOKEN_ISSUANCE]


def test_ingest_names_the_file_it_cannot_deposit_and_deposits_the_others(
    vault: Vault, run: Run, tmp_path: Path
) -> None:
    case = _case(run)
    folder = tmp_path / "carpeta"
    folder.mkdir()
    (folder / "bien.txt").write_bytes(b"a testimony")
    (folder / LATIN1).write_bytes(b"another testimony")
    items, _ = counts(vault)
    result = run("tina", "ingest", str(folder), "--case", case, "--consent", "therapy", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [d["file"] for d in report["deposited"]] == ["bien.txt"]
    assert report["failed"] == [
        {"file": "testimonio_\\xe1.pdf", "reason": "the file name is not UTF-8 text; rename it"}
    ]
    assert counts(vault)[0] == items + 1


def test_an_empty_file_is_refused_with_its_reason_and_nothing_stored(
    vault: Vault, run: Run, tmp_path: Path
) -> None:
    case = _case(run)
    empty = tmp_path / "vacio.pdf"
    empty.write_bytes(b"")
    before = counts(vault)
    result = run("tina", "deposit", str(empty), "--case", case, "--consent", "truth_commission")
    assert result.exit_code == 1, result.output
    assert "an empty file cannot be deposited" in result.stderr
    assert counts(vault)[0] == before[0] and list(vault.store.names("items/")) == []
    # The refusal itself is recorded (who tried what, and why); nothing else is.
    assert since(vault, before) == [ledger.actions.TOKEN_ISSUANCE, ledger.actions.DEPOSIT_REFUSED]


@pytest.mark.parametrize("field", ["title", "filename", "notes"])
def test_text_that_is_not_unicode_is_a_bad_field_not_a_crash(field: str) -> None:
    fields = {"case": "c", "kind": "testimony", "consent": "therapy", "title": "T"}
    fields[field] = "testimonio_\udce1.pdf"  # a lone surrogate: no UTF-8 encodes it
    with pytest.raises(BadField, match=f"{field}: not Unicode text"):
        parse_request(fields, ())
