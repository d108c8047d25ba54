"""SIGKILL a real `tvault serve` during deposits and a real `tvault worker` during extraction,
then check that nothing was lost (tests/integration/test_crashes.py, bench/faults.py).

Clients deposit small text documents over HTTP on several threads, without stopping; the server
is killed after a few deposits come back, the worker whenever it holds a job, each restarted at
once. Afterwards a last server and worker run until every item is indexed, and `Outcome` holds
what a check needs: every id a client got back with the bytes it sent, the jobs that failed,
the temp files left in the store, and the exit and output of `tvault verify`.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import typer
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from keys import KdfParams
from tests import corpus
from vault import credentials
from vault.accounts import add_user
from vault.cli.verify import verify as verify_command
from vault.provision import create_vault
from vault.settings import load_settings

PASSPHRASE = "crash suite passphrase, not a real one"
FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
TVAULT = [sys.executable, "-m", "vault.cli"]
# The sweep at a server's start removes every unreferenced object older than this. Zero is safe
# here: one server at a time, and it sweeps before it serves, so no deposit is in flight then;
# each restart thus removes the objects of the deposits the kill before it cut.
GRACE_SECONDS = 0
LEASE_SECONDS = 2


@dataclass
class Outcome:
    """What the crash run left, for the caller to check."""

    deposited: dict[str, bytes] = field(default_factory=dict)  # id -> the bytes sent
    server_kills: int = 0
    worker_kills: int = 0
    client_errors: int = 0  # requests cut by a kill (the client saw no answer)
    items: int = 0  # items in the database (a cut request may have committed)
    failed_jobs: list[str] = field(default_factory=list)  # "id: last error"
    not_indexed: int = 0
    mismatched: list[str] = field(default_factory=list)  # ids whose download differs
    temp_files: list[str] = field(default_factory=list)
    verify_exit: int = -1
    verify_output: str = ""
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent in each phase


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Vault:
    """The processes of one vault: `tvault serve` on a fixed port, `tvault worker`."""

    def __init__(self, home: Path, database_url: str | None, scratch: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
        self.env.update(
            {
                "TVAULT_HOME": str(home),
                "TVAULT_PASSPHRASE": PASSPHRASE,
                "TVAULT_SCRATCH_DIR": str(scratch),
                "TVAULT_EMBEDDED_WORKER": "false",
                # No search here: the helper process would only slow every start.
                "TVAULT_SEARCH_HELPER": "false",
                "TVAULT_SWEEP_GRACE_SECONDS": str(GRACE_SECONDS),
                "TVAULT_JOBS_POLL_SECONDS": "0.05",
                "TVAULT_JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
                "TVAULT_JOBS_BACKOFF_SECONDS": "0.1",
                "TVAULT_AUTH_FAILURE_BURST": "100000",
            }
        )
        if database_url is not None:
            self.env["TVAULT_DATABASE_URL"] = database_url
        self.engine = create_engine(database_url or f"sqlite+pysqlite:///{home / 'vault.db'}")
        self.log = (home.parent / "processes.log").open("ab")
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        self.server = subprocess.Popen(
            [*TVAULT, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.server.poll() is not None:
                raise AssertionError(f"the server exited ({self.server.returncode})")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            time.sleep(0.05)

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [*TVAULT, "worker", "--concurrency", "1"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its parser processes are killed with its group at the end
        )

    def worker_holds_a_job(self) -> bool:
        assert self.worker is not None
        query = text("SELECT 1 FROM jobs WHERE state = 'running' AND lease_owner LIKE :owner")
        with self.engine.connect() as connection:
            found = connection.execute(query, {"owner": f"%:{self.worker.pid}:%"}).first()
        return found is not None

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        for process in (self.server, self.worker):
            self.kill(process)
        if self.worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
        self.engine.dispose()
        self.log.close()


class _Clients:
    """Threads that deposit documents one after another until stopped."""

    def __init__(self, vault: _Vault, token: str, case_id: str, count: int) -> None:
        self.vault = vault
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Tvault-Kind": "document",
            "Tvault-Title": "crash",
            "Tvault-Consent": "therapy",
        }
        self.case_id = case_id
        self.deposited: dict[str, bytes] = {}
        self.errors = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(count)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.deposited)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        url = f"{self.vault.url}/v1/cases/{self.case_id}/items"
        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set():
                words = " ".join(rng.choice(corpus.SPANISH.split()) for _ in range(200))
                data = f"{words} {os.urandom(8).hex()}".encode()
                try:
                    response = client.post(url, content=data, headers=self.headers)
                except httpx.HTTPError:
                    with self.lock:
                        self.errors += 1
                    time.sleep(0.2)  # the server is down: wait for the next one
                    continue
                if response.status_code != 201:
                    raise AssertionError(
                        f"deposit answered {response.status_code}: {response.text}"
                    )
                with self.lock:
                    self.deposited[response.json()["id"]] = data


@contextlib.contextmanager
def _phase(outcome: Outcome, name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        outcome.phases[name] = outcome.phases.get(name, 0.0) + time.monotonic() - started


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def run(
    home: Path,
    *,
    database_url: str | None = None,
    server_kills: int = 3,
    worker_kills: int = 3,
    clients: int = 3,
    deposits_per_round: int = 4,
) -> Outcome:
    """Run the crash scenario on a new vault in `home` and return what it left."""
    outcome = Outcome()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tvault-crash-scratch-", dir="/dev/shm") as scratch:
        vault = _Vault(home, database_url, Path(scratch))
        try:
            _scenario(vault, outcome, server_kills, worker_kills, clients, deposits_per_round)
        finally:
            vault.close()
    outcome.seconds = time.monotonic() - started
    return outcome


def _scenario(
    vault: _Vault,
    outcome: Outcome,
    server_kills: int,
    worker_kills: int,
    count: int,
    per_round: int,
) -> None:
    with _phase(outcome, "init"):
        token = _create(vault)
    with _phase(outcome, "server starts"):
        vault.start_server()
    auth = {"Authorization": f"Bearer {token}"}
    made = httpx.post(f"{vault.url}/v1/cases", json={"name": "Crash"}, headers=auth, timeout=30)
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    vault.start_worker()
    clients = _Clients(vault, token, case_id, count)
    clients.start()
    try:
        # Every round ends with a restart, so the last kill's leftovers are swept too.
        while outcome.server_kills < server_kills or outcome.worker_kills < worker_kills:
            goal = clients.count() + per_round
            with _phase(outcome, "deposits"):
                _wait(lambda goal=goal: clients.count() >= goal, 120, "deposits")
            if outcome.worker_kills < worker_kills:
                try:
                    with _phase(outcome, "worker holds a job"):
                        _wait(vault.worker_holds_a_job, 30, "the worker's jobs")
                except AssertionError:
                    pass  # caught up with the deposits: killed idle, which must be harmless too
                vault.kill(vault.worker)
                outcome.worker_kills += 1
                vault.start_worker()
            if outcome.server_kills < server_kills:
                vault.kill(vault.server)
                outcome.server_kills += 1
                with _phase(outcome, "server starts"):
                    vault.start_server()
    finally:
        clients.stop()
    outcome.deposited = dict(clients.deposited)
    outcome.client_errors = clients.errors
    with _phase(outcome, "settle"):
        _settle(vault, outcome)
    with (
        _phase(outcome, "downloads"),
        httpx.Client(base_url=vault.url, headers=auth, timeout=60) as client,
    ):
        for item_id, data in outcome.deposited.items():
            response = client.get(f"/v1/items/{item_id}/content")
            if response.status_code != 200 or response.content != data:
                outcome.mismatched.append(item_id)
    vault.stop(vault.worker)
    vault.stop(vault.server)
    tmp = vault.home / "objects" / ".tmp"
    outcome.temp_files = sorted(p.name for p in tmp.iterdir() if p.name != ".lock")
    with _phase(outcome, "verify"):
        outcome.verify_exit, outcome.verify_output = _verify(vault)


def _create(vault: _Vault) -> str:
    """Create the vault in this process, as `tvault init` would (with the fastest KDF the
    keyring accepts: key derivation is not under test); return a token of therapist tina."""
    url = vault.env.get("TVAULT_DATABASE_URL")
    created = create_vault(
        load_settings(vault.home, database_url=url), PASSPHRASE, "admin", kdf=FAST_KDF
    )
    try:
        with created.sessions.begin() as session:
            add_user(session, "tina", "therapist", created.clock())
        return credentials.issue(created, "tina", ttl_seconds=3600).token
    finally:
        created.close()


def _verify(vault: _Vault) -> tuple[int, str]:
    """Run `tvault verify` on the vault, in this process (a new one costs seconds to start)."""
    app = typer.Typer()
    app.command()(verify_command)
    app.command("noop")(lambda: None)  # keep `verify` a named sub-command, as in `tvault`
    env = {k: v for k, v in vault.env.items() if k.startswith("TVAULT_")}
    result = CliRunner().invoke(app, ["verify"], env=env)
    return result.exit_code, result.output


def _settle(vault: _Vault, outcome: Outcome) -> None:
    """Wait until every item's index job is done or a job failed; fill in the counts."""
    items = text("SELECT count(*) FROM items")
    indexed = text("SELECT count(*) FROM jobs WHERE kind = 'index' AND state = 'done'")
    failed = text("SELECT id || ': ' || coalesce(last_error, '') FROM jobs WHERE state = 'failed'")

    def settled() -> bool:
        with vault.engine.connect() as connection:
            outcome.items = int(connection.execute(items).scalar_one())
            done = int(connection.execute(indexed).scalar_one())
            outcome.failed_jobs = list(connection.execute(failed).scalars())
        outcome.not_indexed = outcome.items - done
        return outcome.not_indexed == 0 or bool(outcome.failed_jobs)

    deadline = time.monotonic() + 300
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.1)
