"""The walk-through of docs/usage.md, through the real CLI and a real server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, base_env, tvault

COMMANDS = [
    [],
    ["init"],
    ["serve"],
    ["users"],
    ["users", "add"],
    ["users", "list"],
    ["token"],
    ["cases"],
    ["cases", "create"],
    ["cases", "list"],
    ["cases", "grant"],
    ["deposit"],
    ["status"],
    ["get"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tvault")
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    done = tvault(*command, "--help", env=base_env(tmp_path))
    assert "Usage:" in done.stdout


def test_deposit_status_and_get(server: Server, tmp_path: Path) -> None:
    env = dict(server.env, TVAULT_URL=server.url, TVAULT_TOKEN=server.token("tina"))
    case_id = tvault("cases", "create", "Case of the river", env=env).stdout.strip()
    listed = json.loads(tvault("cases", "list", "--json", env=env).stdout)
    assert [c["name"] for c in listed if c["id"] == case_id] == ["Case of the river"]

    source = tmp_path / "testimony.txt"
    source.write_bytes(b"What happened in the river camp. " * 40_000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tvault(
        "deposit",
        str(source),
        "--case",
        case_id,
        "--consent",
        "therapy,legal",
        "--title",
        "Testimony of R.",
        "--language",
        "es",
        "--tags",
        "torture",
        "--json",
        env=env,
    )
    item = json.loads(out.stdout)
    assert item["sha256"] == digest and item["size"] == source.stat().st_size

    status = json.loads(tvault("status", item["id"], "--json", env=env).stdout)
    assert status["title"] == "Testimony of R."
    assert status["filename"] == "testimony.txt"
    assert status["consent"] == ["legal", "therapy"]

    target = tmp_path / "copy.txt"
    tvault("get", item["id"], "-o", str(target), env=env)
    assert target.read_bytes() == source.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tvault-")] == []


def test_exit_codes(server: Server, tmp_path: Path) -> None:
    env = dict(server.env, TVAULT_URL=server.url, TVAULT_TOKEN=server.token("tina"))
    # 1: a failure the command found (the item does not exist); nothing is written.
    target = tmp_path / "missing.bin"
    unknown = "a" * 26  # well-formed, no such item
    done = tvault("get", unknown, "-o", str(target), env=env, check=False)
    assert done.returncode == 1 and "404" in done.stderr and not target.exists()
    assert tvault("status", unknown, env=env, check=False).returncode == 1
    # 2: usage errors (an unknown option, a missing argument, no token, a malformed id).
    assert tvault("status", "nosuchitem", env=env, check=False).returncode == 2
    assert tvault("deposit", "--bogus", env=env, check=False).returncode == 2
    assert tvault("get", "x", env=env, check=False).returncode == 2
    no_token = {k: v for k, v in env.items() if k != "TVAULT_TOKEN"}
    assert tvault("cases", "list", env=no_token, check=False).returncode == 2
    # 1: the server refuses (a therapist may not add grants).
    assert (
        tvault(
            "cases", "grant", unknown, "tina", "--role", "lawyer", env=env, check=False
        ).returncode
        == 1
    )


def test_init_twice_refuses(server: Server) -> None:
    keyring = (server.home / "keyring").read_bytes()
    done = tvault("init", "--admin", "other", env=server.env, check=False)
    assert done.returncode == 1 and "exists" in done.stderr
    assert (server.home / "keyring").read_bytes() == keyring


def test_users_list_and_token(server: Server) -> None:
    users = json.loads(tvault("users", "list", "--json", env=server.env).stdout)
    assert {(u["name"], u["role"]) for u in users} >= {
        ("admin", "custodian"),
        ("tina", "therapist"),
    }
    assert tvault("token", "nobody", env=server.env, check=False).returncode == 1
    assert (
        tvault("users", "add", "x", "--role", "king", env=server.env, check=False).returncode == 2
    )


def test_serve_refuses_without_a_passphrase(tmp_path: Path, server: Server) -> None:
    env = {k: v for k, v in server.env.items() if k != "TVAULT_PASSPHRASE"}
    done = tvault("serve", "--port", "1", env=env, check=False, stdin="")
    assert done.returncode == 2 and "passphrase" in done.stderr
    wrong = dict(server.env, TVAULT_PASSPHRASE="wrong")
    assert tvault("serve", "--port", "1", env=wrong, check=False).returncode == 1
