"""Two `tvault serve` processes on one PostgreSQL database and one object store (issue 21 point 4).

Concurrent deposits and searches against both (`DEPOSITS` and `SEARCHES`, with checkpoints
signed by both meanwhile), each server's embedded worker taking jobs from the one queue. Then: no
deposit, job or ledger entry lost or doubled; one unbroken ledger chain and tree with checkpoints
that verify (`tvault verify`); a token revoked through one server refused by the other on its
next request, likewise a case grant; and a master key rotated by `tvault keys rotate` used by
both for their next deposits.

In the test run the load is 60 deposits and 150 searches, so the test takes about a minute on an
idle 2-core machine (four on a loaded one); `TVAULT_TEST_LOAD=full` runs the issue's load of 200
deposits and 500 searches (passed 2026-12-07 at load average ~20, 190 s).
`bench/multi_api.py` measures the deposit rate of one and of two servers.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

import keys
from tests.e2e.conftest import Server, provision, serve, tvault
from vault import credentials, jobs, ledger
from vault.accounts import add_user
from vault.db import Item, ItemKey
from vault.db.jobs_tables import Job
from vault.headers import to_headers
from vault.parts import Vault

pytestmark = [pytest.mark.postgres]

FULL = os.environ.get("TVAULT_TEST_LOAD") == "full"
DEPOSITS = 200 if FULL else 60
SEARCHES = 500 if FULL else 150
WORDS = ("tortura", "detención", "Mamani", "Quispe", "comisaría", "cuartel", "noche", "hermano")


@pytest.fixture
def servers(tmp_path: Path, pg_schema_url: str) -> Iterator[tuple[Server, Server, Vault]]:
    home = tmp_path / "vault"
    env, vault = provision(
        home,
        TVAULT_DATABASE_URL=pg_schema_url,
        TVAULT_JOBS_POLL_SECONDS="0.2",
        TVAULT_SEARCH_HELPER="false",
        TVAULT_AUTH_FAILURE_BURST="100000",
    )
    started = []
    try:
        with ThreadPoolExecutor(2) as pool:  # side by side: each start takes seconds under load
            futures = [pool.submit(serve, home, env, name) for name in ("first", "second")]
            for future in futures:
                with contextlib.suppress(Exception):
                    started.append(future.result())
        [future.result() for future in futures]  # raises the first start's failure
        yield started[0], started[1], vault
    finally:
        for server in started:
            server.stop()
        vault.close()


def _client(server: Server, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=16)
    return httpx.Client(base_url=server.url, headers=headers, timeout=120, limits=limits)


def _token(admin: httpx.Client, name: str) -> tuple[str, str]:
    made = admin.post(f"/v1/users/{name}/tokens", json={})
    assert made.status_code == 201, made.text
    return made.json()["token"], made.json()["token_id"]


def _wait(condition: Callable[[], bool], what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _entries(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return list(ledger.entries(session))


@pytest.mark.timeout(900 if FULL else 300)
def test_two_servers_on_one_database_and_store(
    servers: tuple[Server, Server, Vault], tmp_path: Path
) -> None:
    first, second, vault = servers
    with vault.sessions.begin() as session:
        add_user(session, "lena", "lawyer", vault.clock())
        add_user(session, "audrey", "auditor", vault.clock())
    admin_token = credentials.issue(vault, "admin", ttl_seconds=3600).token
    audrey_token = credentials.issue(vault, "audrey", ttl_seconds=3600).token
    admin = {s.url: _client(s, admin_token) for s in (first, second)}
    audrey = [_client(s, audrey_token) for s in (first, second)]
    tina_token, _ = _token(admin[first.url], "tina")
    tina = [_client(s, tina_token) for s in (first, second)]
    case = tina[0].post("/v1/cases", json={"name": "Two servers"}).json()["id"]
    granted = admin[second.url].post(
        f"/v1/cases/{case}/grants", json={"user": "lena", "role": "lawyer"}
    )
    assert granted.status_code == 204, granted.text

    def deposit(n: int) -> str:
        body = f"Testimonio {n}: {WORDS[n % len(WORDS)]} en la noche {n}.\n".encode() * 20
        meta = {"kind": "testimony", "title": f"T{n}", "consent": "legal,therapy"}
        made = tina[n % 2].post(f"/v1/cases/{case}/items", headers=to_headers(meta), content=body)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def search(n: int) -> int:
        word = WORDS[n % len(WORDS)]
        query = word if n % 3 else word[:5] + "*"
        answer = tina[n % 2].post("/v1/search", json={"q": query, "page_size": 5})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])

    def checkpoint(n: int) -> int:
        made = audrey[n % 2].post("/v1/ledger/checkpoints")
        assert made.status_code == 201, made.text
        return int(made.json()["size"])

    # Deposits, searches and checkpoints interleaved, against both servers at once.
    work: list[tuple[Callable[[int], object], int]] = []
    searches = iter(range(SEARCHES))
    for n in range(DEPOSITS):
        work.append((deposit, n))
        work += [(search, s) for s in itertools.islice(searches, 3)]
        if n % 15 == 14:
            work.append((checkpoint, n))
    work += [(search, s) for s in searches]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda job: job[0](job[1]), work))
    elapsed = time.monotonic() - started
    items = [d for (fn, _), d in zip(work, done, strict=True) if fn is deposit]
    assert len(items) == DEPOSITS and len(set(items)) == DEPOSITS
    assert sum(1 for fn, _ in work if fn is search) == SEARCHES
    print(f"{DEPOSITS} deposits and {SEARCHES} searches on two servers in {elapsed:.1f} s")

    # Every job done exactly once, by the two servers' embedded workers.
    def all_done() -> bool:
        with vault.sessions() as session:
            return jobs.counts(session).get(jobs.DONE, 0) == 2 * DEPOSITS

    _wait(all_done, "every extraction and indexing job")
    with vault.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == DEPOSITS
        rows = session.execute(select(Job.item_id, Job.kind, Job.state, Job.attempts)).all()
    assert Counter((r.kind, r.state, r.attempts) for r in rows) == {
        (jobs.EXTRACT, jobs.DONE, 1): DEPOSITS,
        (jobs.INDEX, jobs.DONE, 1): DEPOSITS,
    }
    entries = _entries(vault)
    for action in (
        ledger.actions.INGESTION,
        ledger.actions.METADATA_EXTRACTION,
        ledger.actions.INDEXING,
    ):
        per_item = Counter(e.item_id for e in entries if e.action == action)
        assert per_item == Counter(items), action  # once per item, none lost, none doubled
    assert [e.seq for e in entries] == list(range(len(entries)))  # one chain, no gap
    servers_log = first.log.read_text() + second.log.read_text()
    for server in (first, second):  # both took part in the jobs
        assert "(index, item" in server.log.read_text(), server.log.name
    assert "Traceback" not in servers_log
    # Each server finds what the other's worker indexed (the shared vocabulary).
    everything = [c.post("/v1/search", json={"q": "Testimoni*"}).json()["total"] for c in tina]
    assert everything == [DEPOSITS, DEPOSITS]

    # A token revoked through one server is refused by the other on its next request.
    lena_token, lena_id = _token(admin[first.url], "lena")
    lena = [_client(s, lena_token) for s in (first, second)]
    assert lena[1].get(f"/v1/items/{items[0]}").status_code == 200
    revoked = admin[first.url].delete(f"/v1/tokens/{lena_id}")
    assert revoked.status_code in (200, 204), revoked.text
    assert lena[1].get(f"/v1/items/{items[0]}").status_code == 401
    assert lena[0].get(f"/v1/items/{items[0]}").status_code == 401
    # A case grant revoked through the second is gone on the first's next request.
    for client in lena:
        client.close()
    lena_token, _ = _token(admin[first.url], "lena")
    lena = [_client(s, lena_token) for s in (first, second)]
    assert lena[0].get(f"/v1/items/{items[1]}").status_code == 200
    dropped = admin[second.url].delete(f"/v1/cases/{case}/grants/lena")
    assert dropped.status_code == 200, dropped.text
    assert lena[0].get(f"/v1/items/{items[1]}").status_code == 404

    # A master key rotated by another process is what both use for their next deposits.
    rotated = json.loads(tvault("keys", "rotate", "--json", env=first.env).stdout)
    version = int(rotated["version"])
    after = [deposit(DEPOSITS + n) for n in range(2)]  # one through each server
    with vault.sessions() as session:
        wrapped = {
            item: bytes(w)
            for item, w in session.execute(
                select(ItemKey.item_id, ItemKey.wrapped).where(ItemKey.item_id.in_(after))
            )
        }
    vault.keyring.reload()
    for item in after:
        inner = keys.wrapped_identity(vault.keyring, item.encode("ascii"), wrapped[item])
        assert vault.keyring.version_of(inner) == version, item

    for client in (*admin.values(), *audrey, *tina, *lena):
        client.close()
    verified = tvault("verify", "--json", env=first.env, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
