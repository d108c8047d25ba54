"""The health port of a process without the API: the same /healthz and /readyz, on loopback."""

from __future__ import annotations

import shutil

import httpx

from tests.unit.vault.conftest import _clean_env
from vault import readiness
from vault.health_server import HealthServer
from vault.parts import Vault

# The unit tests' settings guard, used here by importing it (this file starts processes).
__all__ = ["_clean_env"]


def test_the_health_port_answers_healthz_and_readyz(vault: Vault) -> None:
    server = HealthServer(vault, 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert server.port != 0
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == dict.fromkeys(readiness.DEPENDENCIES, "ok")
        shutil.rmtree(vault.settings.objects_path)
        down = httpx.get(f"{base}/readyz")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["failing"] == ["store"]
        assert httpx.get(f"{base}/healthz").status_code == 200  # alive, though not ready
        assert httpx.get(f"{base}/v1/me").status_code == 404  # nothing else is served
        assert httpx.post(f"{base}/readyz").status_code == 501
    finally:
        server.stop()
    server.stop()  # idempotent


def test_the_health_port_binds_loopback_by_default(vault: Vault) -> None:
    server = HealthServer(vault, 0)
    server.start()
    try:
        assert server._server is not None
        assert server._server.server_address[0] == "127.0.0.1"
    finally:
        server.stop()
