"""Scriptable output of `tvault`: only the result on stdout, ids checked before any URL is built,
exit codes 0, 1 or 2. (`serve` on a busy port: tests/integration/test_cli_output.py.)"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.vault.cli_support import Run, cli_runner
from vault.cli import app
from vault.parts import Vault

BODY = b"Testimony recorded at the clinic.\n" * 50


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    return cli_runner(vault, monkeypatch)


def test_deposit_and_get_print_only_their_result_on_stdout(run: Run, tmp_path: Path) -> None:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    source = tmp_path / "testimony.txt"
    source.write_bytes(BODY)
    # As in ITEM=$(tvault deposit ...): the first line of stdout is the result.
    deposited = run("tina", "deposit", str(source), "--case", case, "--consent", "therapy")
    assert deposited.exit_code == 0, deposited.output
    assert re.fullmatch(r"[a-z2-7]{26}  sha256:[0-9a-f]{64}\n", deposited.stdout), repr(
        deposited.stdout
    )
    item = deposited.stdout.split()[0]
    copy = tmp_path / "copy.txt"
    fetched = run("tina", "get", item, "-o", str(copy))
    assert fetched.exit_code == 0, fetched.output
    assert fetched.stdout == f"{copy}  sha256:{deposited.stdout.split(':')[1]}"
    assert copy.read_bytes() == BODY


def test_get_into_a_missing_directory_is_one_clear_line(run: Run, tmp_path: Path) -> None:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    source = tmp_path / "testimony.txt"
    source.write_bytes(BODY)
    item = json.loads(
        run("tina", "deposit", str(source), "--case", case, "--consent", "therapy", "--json").stdout
    )["id"]
    missing = tmp_path / "no-such-dir" / "copy.txt"
    done = run("tina", "get", item, "-o", str(missing))
    assert done.exit_code == 2
    assert done.stderr == f"tvault: -o: no directory {missing.parent}\n"


@pytest.mark.parametrize(
    "args",
    [
        ["status", "../../v1/cases"],
        ["get", "x?y", "-o", "out"],
        ["consent", "item#1"],
        ["hold", "ITEM"],
        ["cases", "grants", "a/b"],
        ["cases", "hold", "a/b", "--reason", "order"],
        ["cases", "grant", "a/b", "lena", "--role", "lawyer"],
        ["deposit", "__FILE__", "--case", "../items", "--consent", "therapy"],
        ["search", "", "--case", "x/y"],
    ],
    ids=lambda args: args[0] if args[0] != "cases" else " ".join(args[:2]),
)
def test_ids_are_checked_before_any_request(args: list[str], tmp_path: Path) -> None:
    source = tmp_path / "testimony.txt"
    source.write_bytes(BODY)
    args = [str(source) if a == "__FILE__" else a for a in args]
    # Nothing listens on the discard port: a request would fail with exit 1, not 2.
    env = {"TVAULT_URL": "http://127.0.0.1:9", "TVAULT_TOKEN": "t", "COLUMNS": "200"}
    done = CliRunner().invoke(app, args, env=env)
    assert done.exit_code == 2, done.output
    assert "id (26 letters a-z and 2-7)" in done.stderr


def test_status_prints_no_python_none_and_zoned_times(run: Run, tmp_path: Path) -> None:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    source = tmp_path / "testimony.txt"
    source.write_bytes(BODY)
    item = run("tina", "deposit", str(source), "--case", case, "--consent", "therapy").stdout
    shown = run("tina", "status", item.split()[0])
    assert shown.exit_code == 0, shown.output
    assert "None" not in shown.stdout, shown.stdout
    fields = dict(line.split(": ", 1) for line in shown.stdout.splitlines())
    assert datetime.fromisoformat(fields["created_at"]).utcoffset() is not None, fields
    # The JSON form says the same.
    data = json.loads(run("tina", "status", item.split()[0], "--json").stdout)
    assert datetime.fromisoformat(data["created_at"]).utcoffset() is not None
    cases = json.loads(run("tina", "cases", "list", "--json").stdout)
    assert datetime.fromisoformat(cases[0]["created_at"]).utcoffset() is not None


def test_search_in_an_unknown_case_is_an_error(run: Run, tmp_path: Path, vault: Vault) -> None:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    assert run("tina", "search", "", "--case", case).exit_code == 0
    unknown = "a" * 26
    done = run("tina", "search", "", "--case", unknown)
    assert done.exit_code == 1, done.output
    assert done.stderr == f"tvault: 404: no case {unknown}\n"
    # A case that exists but is not the caller's gets the same answer.
    other = run("theo", "cases", "create", "Case of the hill").stdout.strip()
    hidden = run("tina", "search", "", "--case", other)
    assert (hidden.exit_code, hidden.stderr) == (1, f"tvault: 404: no case {other}\n")
