"""A real vault for end-to-end tests: `tvault init`, then `tvault serve` in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault.parts import Vault

PASSPHRASE = "e2e passphrase, not a real one"
TVAULT = [sys.executable, "-m", "vault.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
    env.update({"TVAULT_HOME": str(home), "TVAULT_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"})
    # `tvault ingest` keeps resume records there (vault.cli.resume): beside the vault, not ~.
    env["XDG_STATE_HOME"] = str(home.parent / "state")
    env.update(extra)
    return env


def tvault(
    *args: str, env: dict[str, str], check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `tvault` CLI; with `check`, fail on a non-zero exit."""
    done = subprocess.run(
        [*TVAULT, *args], env=env, capture_output=True, text=True, input=stdin, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"tvault {' '.join(args)} -> {done.returncode}: {done.stderr}")
    return done


@dataclass
class Server:
    """A running `tvault serve`, its vault directory, log and tokens."""

    home: Path
    url: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def token(self, name: str) -> str:
        return tvault("token", name, env=self.env).stdout.strip()

    def client(self, name: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(name)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def settled(client: httpx.Client, item: str) -> dict[str, Any]:
    """Return the item's view once its ingest is indexed or failed (or after two minutes)."""
    deadline = time.monotonic() + 120
    while True:
        view: dict[str, Any] = client.get(f"/v1/items/{item}").json()
        if view["state"] in ("indexed", "failed") or time.monotonic() > deadline:
            return view
        time.sleep(0.3)


def start_server(home: Path, **settings: str) -> Server:
    """Create a vault in `home` (custodian `admin`, therapist `tina`) and serve it."""
    env = base_env(home, **settings)
    tvault("init", "--admin", "admin", env=env)
    tvault("users", "add", "tina", "--role", "therapist", env=env)
    return serve(home, env)


def provision(home: Path, **settings: str) -> tuple[dict[str, str], Vault]:
    """Create a vault in `home` from this process, with the fast key derivation of the unit
    tests (every process that opens it later derives quickly too): custodian `admin`, therapist
    `tina`. Return the environment to serve it with and the vault, open (close it)."""
    from tests.unit.vault.conftest import FAST_KDF
    from vault.accounts import add_user
    from vault.provision import create_vault
    from vault.settings import load_settings

    env = base_env(home, **settings)
    overrides = {name[7:].lower(): value for name, value in settings.items()}
    vault = create_vault(load_settings(home, **overrides), PASSPHRASE, "admin", kdf=FAST_KDF)
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
    return env, vault


def serve(home: Path, env: dict[str, str], name: str = "server") -> Server:
    """Start `tvault serve` on the existing vault in `home` (one more process); wait for it."""
    port = free_port()
    log = home.parent / f"{home.name}-{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*TVAULT, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    server = Server(home, f"http://127.0.0.1:{port}", log, env, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("server exited: " + log.read_text(errors="replace"))
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError("server did not start: " + log.read_text(errors="replace"))


def start_worker(home: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    """Start `tvault worker` on the vault in `home`; wait until it polls for jobs."""
    log = home.parent / f"{home.name}-{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*TVAULT, "worker"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while " started: " not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError("worker did not start: " + log.read_text(errors="replace"))
        time.sleep(0.1)
    return process


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """Stop `process` (SIGTERM, then SIGKILL after 30 s); return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One served vault per test module."""
    home = tmp_path_factory.mktemp("e2e") / "vault"
    # These tests send many refused requests on purpose (route scans); the refused-token budget
    # per client has its own tests (tests/e2e/test_forged_tokens.py).
    running = start_server(home, TVAULT_AUTH_FAILURE_BURST="100000")
    yield running
    running.stop()
