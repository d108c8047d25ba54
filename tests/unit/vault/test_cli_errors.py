"""Every `tvault` command answers a user's mistake with a line and exit 1 or 2, never a Python
traceback; the commands are read from the typer app, so a new one cannot be left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from vault.cli import app

BAD = "no/such?id#x"


def _sub(command: Any, name: str) -> Any:
    return command.get_command(command.context_class(command), name)


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    # typer carries its own copy of click: a group is what lists subcommands.
    if hasattr(command, "list_commands"):
        for name in command.list_commands(command.context_class(command)):
            yield from _commands(_sub(command, name), (*path, name))
    else:
        yield path


# The click command of `tvault`, built once: each test only reads its parameters.
ROOT = typer.main.get_command(app)
COMMANDS = list(_commands(ROOT))


def _bad_arguments(path: tuple[str, ...]) -> list[str]:
    """Return `path` with every required argument and option given the value `BAD`."""
    command = ROOT
    for name in path:
        command = _sub(command, name)
    args = list(path)
    for param in command.params:
        if not param.required:
            continue
        if param.param_type_name == "option":
            args.append(param.opts[0])
        args.append(BAD)
    return args


def test_the_app_has_its_commands() -> None:
    # The enumeration itself must see the commands (and subcommands) people use.
    assert {("deposit",), ("get",), ("consent",), ("serve",), ("cases", "grant")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_bad_arguments_give_a_line_and_exit_1_or_2_never_a_traceback(
    path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_vault = tmp_path / "not-a-vault"
    not_a_vault.write_text("a file where the vault directory should be\n")
    monkeypatch.chdir(tmp_path)
    env = {
        "TVAULT_HOME": str(not_a_vault),
        "TVAULT_PASSPHRASE": "not the passphrase",
        "TVAULT_URL": "http://127.0.0.1:9",  # discard: nothing listens
        "TVAULT_TOKEN": "not-a-token",
    }
    for args in (_bad_arguments(path), [*path, "--no-such-option"]):
        done = CliRunner().invoke(app, args, env=env)
        shown = done.output + (done.stderr or "")
        assert "Traceback" not in shown, (args, shown)
        assert done.exception is None or isinstance(done.exception, SystemExit), (
            args,
            repr(done.exception),
        )
        assert done.exit_code in (1, 2), (args, done.exit_code, shown)
