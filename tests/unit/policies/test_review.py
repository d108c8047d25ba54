"""`python -m policies check|diff`: what an operator runs before deploying a replaced policy."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

import policies
from policies.__main__ import main
from policies.review import differences, situations

DEFAULT_TEXT = resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")


def test_the_shipped_policy_differs_from_itself_nowhere() -> None:
    assert differences(policies.default_engine(), policies.default_engine()) == []


def test_situations_cover_every_role_and_action() -> None:
    seen = list(situations())
    assert {s.role for s in seen} == policies.roles.ALL
    assert {s.action for s in seen} == policies.actions.ALL


def test_a_widened_rule_shows_up_cell_by_cell(tmp_path: Path) -> None:
    path = tmp_path / "wide.toml"
    path.write_text(DEFAULT_TEXT.replace('distinct_from = ["requester"]\n', ""))
    changed = differences(policies.default_engine(), policies.load(path))
    assert changed == [
        "custodian (not granted, own) approval.approve [no consent]: deny -> allow",
        "custodian (not granted, own) export.approve [no consent]: deny -> allow",
        "custodian (granted on the case, own) approval.approve [no consent]: deny -> allow",
        "custodian (granted on the case, own) export.approve [no consent]: deny -> allow",
    ]


def test_a_dropped_obligation_shows_up(tmp_path: Path) -> None:
    path = tmp_path / "unredacted.toml"
    path.write_text(DEFAULT_TEXT.replace('obligations = ["redact_identities"]\n', ""))
    changed = differences(policies.default_engine(), policies.load(path))
    cell = "advocate (granted on the case) item.read [advocacy_anonymised]"
    assert f"{cell}: allow (redact_identities) -> allow" in changed


def test_check_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = resources.files("policies").joinpath("default.toml")
    assert main(["check", str(path)]) == 0
    assert "16 rules, ok" in capsys.readouterr().out


def test_check_names_the_line_of_a_defect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('format = 1\n[[rule]]\nroles = ["lawyr"]\n')
    assert main(["check", str(path)]) == 1
    assert f"{path}:3: unknown role 'lawyr'" in capsys.readouterr().err


def test_diff_lists_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wide.toml"
    path.write_text(DEFAULT_TEXT.replace('distinct_from = ["grantee"]\n', ""))
    assert main(["diff", str(path)]) == 0
    out = capsys.readouterr()
    assert "custodian (not granted, own) case.grant [no consent]: deny -> allow" in out.out
    assert "2 situations decided differently" in out.err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
