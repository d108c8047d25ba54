"""Key rotation never loses a testimony (issue 16 point 6), on SQLite and on PostgreSQL.

A real `tvault serve` and a real `tvault worker` run while a loop deposits testimonies through
the CLI; meanwhile `tvault keys rotate`, then `rotate --retire`, whose retirement a second
custodian approves (DESIGN.md promise 10). After a restart every item opens and `tvault verify`
is clean. Before the fix, the server kept wrapping new deposits under the version it had loaded,
and retiring that version made them unreadable after the restart.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import TVAULT, Server, start_server, tvault

# Every step is a `tvault` process; on a loaded 2-core machine the whole run takes minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Settings of the database the processes share: the embedded SQLite, or a fresh schema."""
    if request.param == "sqlite":
        yield {}
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"rotation_{secrets.token_hex(6)}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {"TVAULT_DATABASE_URL": f"{url}?options=-csearch_path%3D{schema}"}
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Depositor(threading.Thread):
    """Deposits numbered testimonies through `tvault deposit` until stopped."""

    def __init__(self, env: dict[str, str], case: str, folder: Path) -> None:
        super().__init__(daemon=True)
        self.env, self.case, self.folder = env, case, folder
        self.stop = threading.Event()
        self.done: dict[str, bytes] = {}  # item id -> body
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            body = f"Testimony {n}, recorded while the keys turned.\n".encode() * 50
            source = self.folder / f"t{n}.txt"
            source.write_bytes(body)
            done = tvault(
                "deposit", str(source), "--case", self.case, "--kind", "testimony",
                "--title", f"T{n}", "--consent", "therapy", "--json", env=self.env, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                self.errors.append(done.stderr)
                continue
            self.done[json.loads(done.stdout)["id"]] = body

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(self.done) >= count, self.errors


def start_worker(server: Server) -> subprocess.Popen[bytes]:
    log = server.home.parent / "worker.log"
    with log.open("ab") as out:
        return subprocess.Popen([*TVAULT, "worker"], env=server.env, stdout=out, stderr=out)


def restart(server: Server) -> Server:
    server.stop()
    port = server.url.rsplit(":", 1)[1]
    with server.log.open("ab") as out:
        process = subprocess.Popen(
            [*TVAULT, "serve", "--port", port], env=server.env, stdout=out, stderr=out
        )
    again = Server(server.home, server.url, server.log, server.env, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, server.log.read_text(errors="replace")
        try:
            with again.client("tina") as client:
                if client.get("/healthz").status_code == 200:
                    return again
        except Exception:
            time.sleep(0.2)
    raise AssertionError("the server did not come back: " + server.log.read_text())


def test_rotation_and_retirement_while_serving_lose_no_testimony(
    tmp_path: Path, database: dict[str, str]
) -> None:
    home = tmp_path / "vault"
    server = start_server(home, TVAULT_EMBEDDED_WORKER="false", **database)
    worker = start_worker(server)
    try:
        tvault("users", "add", "cleo", "--role", "custodian", env=server.env)
        tina = {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("tina")}
        cleo = {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("cleo")}
        case = tvault("cases", "create", "Case of the keys", env=tina).stdout.strip()
        loop = Depositor(tina, case, tmp_path)
        loop.start()
        loop.wait_for(2)
        tvault("keys", "rotate", env=server.env)  # version 2, while deposits go on
        loop.wait_for(len(loop.done) + 2)
        rotated = tvault("keys", "rotate", "--retire", "--json", env=server.env)
        approval = json.loads(rotated.stdout)["approval"]
        assert approval, rotated.stdout
        loop.wait_for(len(loop.done) + 1)
        approved = json.loads(
            tvault("approvals", "approve", approval, "--json", "--yes", env=cleo).stdout
        )
        assert approved["state"] == "done" and approved["outcome"]["retired"] == [1, 2]
        loop.wait_for(len(loop.done) + 2)  # deposits after the retirement, by the same server
        loop.stop.set()
        loop.join(timeout=120)
        assert not loop.errors, loop.errors
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.stop()
    server = restart(server)
    try:
        with server.client("tina") as client:
            for item, body in loop.done.items():
                got = client.get(f"/v1/items/{item}/content")
                assert got.status_code == 200 and got.content == body, (item, got.text)
        verified = tvault("verify", env=server.env, check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        server.stop()
