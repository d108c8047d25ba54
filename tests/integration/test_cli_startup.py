"""`tvault --help` and the client commands start without the server's libraries (issue 20,
point 11): each runs in a fresh interpreter, and what it imported is read from `sys.modules`.

The speed itself is measured by bench/startup.py; this keeps the cause of the slowness (a module
importing fastapi, sqlalchemy, pydantic or cryptography at its top) from coming back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ITEM = "a" * 26
# Libraries a client command never needs; any of them at the top of a CLI module makes every
# command pay for it. `click`, `pygments` and `markdown_it` come with httpx's own command line
# and rich's help panels; `rich` is for a terminal only.
HEAVY = {
    "alembic",
    "click",
    "cryptography",
    "elasticsearch",
    "fastapi",
    "jose",
    "keys",
    "markdown_it",
    "minio",
    "psycopg",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "pygments",
    "rich",
    "search",
    "sqlalchemy",
    "starlette",
    "tantivy",
    "uvicorn",
}
HEAVY_VAULT = (
    "vault.access",
    "vault.api",
    "vault.app",
    "vault.compose",
    "vault.db",
    "vault.ledger",
    "vault.tokens",
)
COMMANDS = [
    ["--help"],
    ["cases", "grant", "--help"],
    ["status", ITEM],
    ["get", ITEM, "-o", "/tmp/tvault-startup-test-out"],
    ["deposit", __file__, "--case", ITEM, "--consent", "therapy"],
    ["cases", "list"],
    ["search", "Quispe"],
    ["consent", ITEM],
    ["hold", ITEM],
    ["keys", "shred", ITEM, "--reason", "duplicate", "--yes"],
    ["approvals", "approve", ITEM, "--yes"],
    ["jobs"],
    ["ingest", "{one_file_dir}", "--case", ITEM, "--consent", "therapy"],
    ["token", "list", "tina"],
    ["users", "keys", "tina"],
    ["users", "recipients", "list", "cleo"],
    ["export", "list"],
    ["users", "passwd", "--help"],
    ["verify-export", "--help"],
    ["ledger", "checkpoint"],
    ["ledger", "entries", "--item", ITEM],
]
# Run the command as the `tvault` script does, then list what it imported.
PROBE = """
import json, sys
sys.argv = ["tvault", *json.loads(sys.argv[1])]
from vault.cli import main
try:
    main()
except SystemExit:
    pass
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_client_commands_import_no_server_library(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("A testimony.\n")
    # deposit and ingest retry a lost connection for ~15 s (vault.cli.common.send_deposit); the
    # commands run side by side, so that is the test's wall time.
    commands = [[a.format(one_file_dir=tmp_path) for a in args] for args in COMMANDS]
    # Nothing listens on the port: each command gets as far as its request, and is refused.
    env = {"TVAULT_URL": f"http://127.0.0.1:{_free_port()}", "TVAULT_TOKEN": "t", "PATH": ""}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE, json.dumps(args)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = [child.communicate(timeout=120) for child in children]
    found = {}
    for args, (out, err) in zip(commands, results, strict=True):
        assert "Traceback" not in err, err
        # The help printed, or the command got as far as its request and was refused: it ran.
        assert "Usage:" in out or "cannot reach the vault" in out + err or "refused" in err, (
            args,
            err,
        )
        line = next(x for x in out.splitlines() if x.startswith("MODULES "))
        modules = json.loads(line.removeprefix("MODULES "))
        heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY_VAULT))
        if heavy:
            found[" ".join(args)] = heavy[:8]
    assert found == {}, "reinstall if typer >= 0.29 (it imports pydantic): make install-test"


@pytest.mark.parametrize("package", ["sqlalchemy", "fastapi"])
def test_the_probe_sees_a_heavy_import(package: str) -> None:
    # The check above can fail: a command that does load a server library is caught.
    probe = PROBE.replace(
        "from vault.cli import main", f"import {package}\nfrom vault.cli import main"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(["--help"])],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert f'"{package}"' in done.stdout


# What `tvault ledger proof` and `tvault verify --remote` import once the server has answered:
# the proof and note checks, never the ledger's tables (SQLAlchemy) nor the vault's own verify.
AFTER_ANSWER = """
import sys
import rfc8785
import keys
import vault.cli.ledger, vault.cli.verify
from vault.ledger import note
from vault.ledger.entry import leaf_hash, parse
from vault.ledger.errors import LedgerError
from vault.ledger.tree import MerkleTree, verify_consistency, verify_inclusion
print(sorted(m for m in sys.modules if m.split(".")[0] in {"sqlalchemy", "alembic", "fastapi"}
             or m in {"vault.verify", "vault.ledger.tables", "vault.db"}))
"""


def test_checking_proofs_and_notes_does_not_load_the_ledger_tables() -> None:
    done = subprocess.run(
        [sys.executable, "-c", AFTER_ANSWER], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
