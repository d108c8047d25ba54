"""`tvault serve` on a busy port exits 1 with one line, its services stopped."""

from __future__ import annotations

import socket
import threading

from typer.testing import CliRunner

from tests.unit.vault.conftest import PASSPHRASE, _clean_env
from vault.cli import app
from vault.parts import Vault

# The unit tests' settings guard, used here by importing it (this file starts a server).
__all__ = ["_clean_env"]


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
