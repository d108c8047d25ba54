"""Consent flags of `tvault deposit` and `tvault consent`: repeated options accumulate, a
contradiction is a usage error, a grant that changes nothing makes no new version."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.unit.vault.cli_support import Run, cli_runner
from vault import ledger
from vault.parts import Vault


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    return cli_runner(vault, monkeypatch)


def _deposit(run: Run, tmp_path: Path, *consent: str) -> str:
    case = run("tina", "cases", "create", "Case of the river")
    assert case.exit_code == 0, case.output
    source = tmp_path / "testimony.txt"
    source.write_bytes(b"Testimony recorded at the clinic.\n" * 50)
    done = run("tina", "deposit", str(source), "--case", case.stdout.strip(), *consent, "--json")
    assert done.exit_code == 0, done.output
    item: str = json.loads(done.stdout)["id"]
    return item


def _scopes(run: Run, item: str) -> list[str]:
    shown = run("tina", "status", item, "--json")
    assert shown.exit_code == 0, shown.output
    scopes: list[str] = json.loads(shown.stdout)["consent"]
    return scopes


def test_repeated_consent_options_at_deposit_accumulate(run: Run, tmp_path: Path) -> None:
    item = _deposit(run, tmp_path, "--consent", "therapy", "--consent", "legal")
    assert _scopes(run, item) == ["legal", "therapy"]
    # A comma list means the same.
    listed = _deposit(run, tmp_path, "--consent", "therapy,legal")
    assert _scopes(run, listed) == ["legal", "therapy"]


def test_repeated_withdrawals_accumulate(run: Run, tmp_path: Path) -> None:
    item = _deposit(run, tmp_path, "--consent", "therapy,legal,archive")
    done = run(
        "tina", "consent", item, "--withdraw", "therapy", "--withdraw", "archive",
        "--depositor-confirms",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert _scopes(run, item) == ["legal"]
    granted = run(
        "tina", "consent", item, "--grant", "therapy", "--grant", "archive,research",
        "--depositor-confirms",
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    assert _scopes(run, item) == ["archive", "legal", "research", "therapy"]


def test_a_scope_granted_and_withdrawn_in_one_call_is_a_usage_error(
    run: Run, tmp_path: Path, vault: Vault
) -> None:
    item = _deposit(run, tmp_path, "--consent", "therapy,legal")
    both = run(
        "tina", "consent", item, "--grant", "archive", "--withdraw", "legal,archive",
        "--depositor-confirms",
    )  # fmt: skip
    assert both.exit_code == 2
    assert "archive" in both.stderr
    assert _scopes(run, item) == ["legal", "therapy"]
    with vault.sessions() as session:
        assert not [e for e in ledger.entries(session) if e.action == "consent change"]


def test_granting_a_scope_already_held_makes_no_new_version(
    run: Run, tmp_path: Path, vault: Vault
) -> None:
    item = _deposit(run, tmp_path, "--consent", "therapy,legal")
    again = run("tina", "consent", item, "--grant", "legal", "--depositor-confirms", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["version"] == 1
    history = run("tina", "consent", item, "--json")
    assert [v["version"] for v in json.loads(history.stdout)] == [1]
    with vault.sessions() as session:
        assert not [e for e in ledger.entries(session) if e.action == "consent change"]


def test_the_consent_history_shows_timezone_aware_dates(run: Run, tmp_path: Path) -> None:
    item = _deposit(run, tmp_path, "--consent", "therapy,legal")
    run("tina", "consent", item, "--withdraw", "legal", "--depositor-confirms")
    lines = run("tina", "consent", item).stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["v1", "legal,therapy"], ["v2", "therapy"]]
    for line in lines:
        recorded = datetime.fromisoformat(line.split("\t")[2])
        assert recorded.utcoffset() is not None, line


def test_repeated_consent_options_at_ingest_accumulate(run: Run, tmp_path: Path) -> None:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "one.txt").write_bytes(b"Testimony recorded at the clinic.\n" * 50)
    done = run(
        "tina", "ingest", str(folder), "--case", case, "--consent", "therapy",
        "--consent", "legal", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    [deposited] = json.loads(done.stdout)["deposited"]
    assert _scopes(run, deposited["id"]) == ["legal", "therapy"]
