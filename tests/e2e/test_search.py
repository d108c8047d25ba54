"""Search end to end: deposit through the API, the embedded worker extracts and indexes, search
over HTTP and with `tvault search`; stop, delete the index, `tvault reindex`, same results."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TVAULT, Server, free_port, start_server, tvault
from vault.headers import to_headers

NAME = "Quispe"
TEXT = (
    "El 3 de marzo fui detenido por la policía. Durante la detención recibí golpes eléctricos. "
    f"Mi vecino {NAME} Mamani vio cómo me llevaban a la comisaría."
)


def _serve(home: Path, env: dict[str, str]) -> Server:
    """Serve an existing vault again (start_server also runs `tvault init`)."""
    port = free_port()
    log = home.parent / f"{home.name}-server-again.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*TVAULT, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    server = Server(home, f"http://127.0.0.1:{port}", log, env, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError("server did not start")


def _search(client: httpx.Client, q: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/search", json={"q": q, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait_for(client: httpx.Client, q: str, total: int) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        found = _search(client, q)
        if found["total"] == total or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("e2e-search") / "vault"
    server = start_server(home)
    try:
        tvault("users", "add", "lena", "--role", "lawyer", env=server.env)
        with server.client("tina") as tina, server.client("admin") as admin:
            case = tina.post("/v1/cases", json={"name": "Caso"}).json()["id"]
            deposited = tina.post(
                f"/v1/cases/{case}/items",
                content=TEXT.encode(),
                headers={
                    "Content-Type": "text/plain",
                    **to_headers(
                        {"kind": "testimony", "title": "Declaración", "consent": "legal,therapy"}
                    ),
                },
            )
            assert deposited.status_code == 201, deposited.text
            granted = admin.post(
                f"/v1/cases/{case}/grants", json={"user": "lena", "role": "lawyer"}
            )
            assert granted.status_code == 204, granted.text
        yield server, case, deposited.json()["id"]
    finally:
        server.stop()


def test_search_over_http_and_cli_then_rebuild(served: Any) -> None:
    server, case, item_id = served
    with server.client("lena") as lena:
        found = _wait_for(lena, "detencion", 1)
        assert [h["item_id"] for h in found["hits"]] == [item_id], found
        hit = found["hits"][0]
        assert "<mark>detención</mark>" in hit["snippet"]
        assert hit["title"] == "Declaración" and hit["redacted"] is False
        assert found["facets"]["case"] == {case: 1}
        assert _search(lena, "Mamany~1")["total"] == 1
        bad = lena.post("/v1/search", json={"q": f'"{NAME} unterminated'})
        assert bad.status_code == 422 and NAME not in bad.text
        before = [_search(lena, q) for q in ("detencion", "golpes OR arrest", "polic*", "")]

    anonymous = httpx.post(f"{server.url}/v1/search", json={"q": "detencion"}, timeout=30)
    assert anonymous.status_code == 401
    too_long = httpx.post(
        f"{server.url}/v1/search",
        json={"q": NAME * 500},
        headers={"Authorization": f"Bearer {server.token('lena')}"},
        timeout=30,
    )
    assert too_long.status_code == 422 and NAME not in too_long.text

    env = {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("lena")}
    as_json = json.loads(tvault("search", "detencion", "--case", case, "--json", env=env).stdout)
    assert as_json["total"] == 1 and as_json["hits"][0]["item_id"] == item_id
    shown = tvault("search", "detencion", env=env).stdout
    assert item_id in shown and "detención" in shown and "case: " in shown
    assert tvault("search", '"open', env=env, check=False).returncode == 1

    with server.client("tina") as tina:  # a therapist without `legal`... has `therapy` here
        assert _search(tina, "detencion")["total"] == 1
    with server.client("admin") as admin:  # custodians never search content
        assert _search(admin, "detencion")["total"] == 0

    server.stop()
    log = server.log.read_text(errors="replace")
    assert NAME not in log and "detencion" not in log
    shutil.rmtree(server.home / "index")
    rebuilt = tvault("reindex", "--json", env=server.env)
    assert json.loads(rebuilt.stdout) == {"indexed": 1}
    again = _serve(server.home, server.env)
    try:
        with again.client("lena") as lena:
            after = [_search(lena, q) for q in ("detencion", "golpes OR arrest", "polic*", "")]
    finally:
        again.stop()
    assert after == before
