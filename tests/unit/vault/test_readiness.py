"""`/healthz` and `/readyz`: liveness, and each dependency reachable within 2 s, by name."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tests.unit.vault.api_support import TestClient
from vault import readiness
from vault.compose import app_of, extractor_check
from vault.parts import Vault

URL = "https://vault.test"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def _readyz(vault: Vault) -> tuple[int, dict[str, object], str]:
    # No `with`: the lifespan (sweep, services) is not what is under test.
    response = TestClient(app_of(vault), base_url=URL).get("/readyz")
    return response.status_code, response.json(), response.headers["content-type"]


def test_healthz_answers_while_a_dependency_is_down(vault: Vault) -> None:
    shutil.rmtree(vault.settings.objects_path)
    response = TestClient(app_of(vault), base_url=URL).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_on_a_healthy_vault(vault: Vault) -> None:
    status, body, media_type = _readyz(vault)
    assert status == 200, body
    assert media_type == "application/json"
    assert body == {"status": "ready", "checks": dict.fromkeys(readiness.DEPENDENCIES, "ok")}


def test_readyz_names_the_database_when_it_is_unreachable(vault: Vault) -> None:
    port = _closed_port()
    healthy = vault.engine
    vault.engine = create_engine(f"postgresql+psycopg://tvault:hunter2@127.0.0.1:{port}/tvault")
    try:
        status, body, media_type = _readyz(vault)
    finally:
        vault.engine.dispose()
        vault.engine = healthy
    assert status == 503
    assert media_type == "application/problem+json"
    assert body["type"] == readiness.PROBLEM_TYPE and body["status"] == 503
    assert body["failing"] == ["database"]
    assert "database" in str(body["detail"])
    # Nothing of the URL: neither its password nor where the database lives.
    assert "hunter2" not in str(body) and str(port) not in str(body)


def test_readyz_names_the_store_when_its_directory_is_gone(vault: Vault) -> None:
    objects = vault.settings.objects_path
    shutil.rmtree(objects)
    status, body, _ = _readyz(vault)
    assert status == 503
    assert body["failing"] == ["store"]
    assert body["detail"] == "not ready: store"
    assert str(objects) not in str(body) and str(vault.settings.home) not in str(body)


def test_a_dependency_that_hangs_fails_within_the_time_limit(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    monkeypatch.setitem(readiness.PROBES, "index", lambda _vault: release.wait(30))
    started = time.monotonic()
    try:
        ready = readiness.check(vault, timeout_s=0.2)
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert ready == {"database": "ok", "store": "ok", "index": "failing", "extractor": "ok"}


def test_the_extractor_is_not_ready_without_an_in_memory_scratch(
    vault: Vault, disk_path: Path
) -> None:
    vault.settings = vault.settings.model_copy(update={"scratch_dir": disk_path})
    vault.check_extractor = extractor_check(vault.settings)  # as compose.build makes it
    assert readiness.check(vault)["extractor"] == "failing"


def test_a_tika_server_that_does_not_answer_is_named(vault: Vault) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    vault.settings = vault.settings.model_copy(update={"extractor": "tika-server", "tika_url": url})
    vault.check_extractor = extractor_check(vault.settings)
    status, body, _ = _readyz(vault)
    assert status == 503 and body["failing"] == ["extractor"]
