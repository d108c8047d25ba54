"""Scriptable output of `tvault`: only the result on stdout, ids checked before any URL is built,
exit codes 0, 1 or 2, and `serve` on a busy port exits 1 with one line, its services stopped."""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.vault.cli_support import Run, cli_runner
from tests.unit.vault.conftest import PASSPHRASE
from vault.cli import app
from vault.compose import Vault

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


def test_serve_on_a_busy_port_exits_1_with_one_line_and_stops_its_services(
    vault: Vault,
) -> None:
    env = {"TVAULT_HOME": str(vault.settings.home), "TVAULT_PASSPHRASE": PASSPHRASE}
    if vault.settings.database_url:
        env["TVAULT_DATABASE_URL"] = vault.settings.database_url
    before = set(threading.enumerate())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = CliRunner().invoke(app, ["serve", "--port", port], env=env)
    assert done.exit_code == 1, done.output
    assert done.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.output
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, left
