"""`tvault worker --health-port`: a standalone worker process answers /healthz and /readyz."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.unit.vault.conftest import FAST_KDF
from vault import readiness
from vault.provision import create_vault
from vault.settings import load_settings

pytestmark = [pytest.mark.slow]

PASSPHRASE = "health port test passphrase"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_worker_answers_on_its_health_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("TVAULT_") and not name.startswith("TVAULT_TEST_"):
            monkeypatch.delenv(name)
    settings = load_settings(tmp_path / "vault")
    create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF).close()
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")  # the passphrase from a file, as docker-compose gives it
    secret.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
    env |= {"TVAULT_HOME": str(settings.home), "TVAULT_PASSPHRASE_FILE": str(secret)}
    port = _free_port()
    command = [sys.executable, "-m", "vault.cli", "worker", "--health-port", str(port)]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                alive = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.2)
        assert alive.json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == dict.fromkeys(readiness.DEPENDENCIES, "ok")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text(errors="replace")
