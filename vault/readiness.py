"""Readiness: are the database, object store, index and extractor of a vault reachable?

`GET /readyz` of the API and of a worker's health port answer with `check` (docs/deploy.md).
Each dependency is probed in its own thread and must answer within `TIMEOUT_S`; a probe that
hangs (a firewalled host) is abandoned, not waited for, so the answer always comes in time.
The answer names failing dependencies only, never an error message: messages can quote a URL
with its password or a path of the host, which an unauthenticated route must not reveal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Final

import httpx
from sqlalchemy import text

from ingest.scratch import memory_dir

if TYPE_CHECKING:
    from vault.compose import Vault

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 2.0
DEPENDENCIES: Final = ("database", "store", "index", "extractor")
PROBLEM_TYPE: Final = "urn:tvault:problem:not-ready"


def _database(vault: Vault) -> None:
    with vault.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _store(vault: Vault) -> None:
    # Lists at most one object: the store answers and its root (directory, bucket) exists.
    next(iter(vault.store.entries()), None)


def _index(vault: Vault) -> None:
    from vault.indexing import index_of

    index_of(vault).count()


def _extractor(vault: Vault) -> None:
    settings = vault.settings
    # Raises ScratchError: without an in-memory scratch directory no original can be parsed.
    memory_dir(settings.scratch_dir)
    if settings.extractor == "tika-server":
        if not settings.tika_url:
            raise ValueError("no TVAULT_TIKA_URL")
        url = settings.tika_url.rstrip("/") + "/tika"
        httpx.get(url, timeout=TIMEOUT_S, follow_redirects=False).raise_for_status()


PROBES: Final[dict[str, Callable[[Vault], None]]] = {
    "database": _database,
    "store": _store,
    "index": _index,
    "extractor": _extractor,
}


def check(vault: Vault, timeout_s: float = TIMEOUT_S) -> dict[str, bool]:
    """Return, for each dependency in `DEPENDENCIES`, whether it answered within `timeout_s`.

    Never raises for a failing dependency; the failure's type is logged, not its message.
    """
    pool = ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(probe, vault) for name, probe in PROBES.items()}
        wait(futures.values(), timeout=timeout_s)
    finally:
        # A hung probe keeps its thread until it gives up by itself; the answer does not wait.
        pool.shutdown(wait=False, cancel_futures=True)
    ready: dict[str, bool] = {}
    for name, future in futures.items():
        if future.cancelled() or not future.done():
            log.warning("readiness: %s did not answer within %.0f s", name, timeout_s)
            ready[name] = False
        elif (error := future.exception()) is not None:
            log.warning("readiness: %s failed: %s", name, type(error).__name__)
            ready[name] = False
        else:
            ready[name] = True
    return ready


def answer(ready: dict[str, bool]) -> tuple[int, dict[str, object]]:
    """Return the status and JSON body of `/readyz` for `ready` (as `check` returns it).

    200 with each dependency "ok" when all are; otherwise 503 with an RFC 9457 problem whose
    `detail` and `failing` name each failing dependency.
    """
    checks = {name: "ok" if ok else "failing" for name, ok in ready.items()}
    failing = [name for name, ok in ready.items() if not ok]
    if not failing:
        return 200, {"status": "ready", "checks": checks}
    return 503, {
        "type": PROBLEM_TYPE,
        "title": "Service Unavailable",
        "status": 503,
        "detail": "not ready: " + ", ".join(failing),
        "failing": failing,
        "checks": checks,
    }
