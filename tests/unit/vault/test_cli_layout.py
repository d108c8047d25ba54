"""House rules of the CLI's layout (issue 21, point 7): one module per command group, and what
modules share is public in `vault.cli.common`."""

from __future__ import annotations

import ast
from pathlib import Path

import typer
from typer.core import TyperGroup

import vault.cli
from vault.cli import app, only

CLI = Path(vault.cli.__file__).parent


def test_each_command_group_lives_in_one_module() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    groups = {name: cmd for name, cmd in root.commands.items() if isinstance(cmd, TyperGroup)}
    assert {"users", "token", "cases", "keys", "approvals", "ledger"} <= set(groups)
    for name, group in groups.items():
        modules = {sub.callback.__module__ for sub in group.commands.values() if sub.callback}
        assert len(modules) == 1, f"tvault {name} is split across {sorted(modules)}"


def test_no_private_name_is_imported_across_cli_modules() -> None:
    crossing = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vault.cli"):
                crossing += [f"{path.name}: {a.name}" for a in node.names if a.name[0] == "_"]
    assert crossing == []


def _shape(command: object) -> object:
    # Names, options and help of a command and, for a group, of its commands: what a user meets.
    params = [(p.name, tuple(p.opts), p.required) for p in getattr(command, "params", [])]
    subs = getattr(command, "commands", {})
    return (getattr(command, "help", None), params, {n: _shape(c) for n, c in subs.items()})


def test_each_command_alone_is_the_same_as_in_the_whole_app() -> None:
    # `main` builds only the command asked for (vault.cli.only): it must not differ from `app`.
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for name, command in root.commands.items():
        single = only(name)
        assert single is not None, name
        alone = typer.main.get_command(single)
        assert isinstance(alone, TyperGroup) and list(alone.commands) == [name]
        assert _shape(alone.commands[name]) == _shape(command), name
    assert only("no-such-command") is None
