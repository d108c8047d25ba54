"""Readiness: are the database, object store, index and extractor of a vault reachable?

`GET /readyz` of the API and of a worker's health port answer with `check` (docs/deploy.md).
Each dependency is probed in its own thread and must answer within `TIMEOUT_S`; a probe that
hangs (a firewalled host) is abandoned, not waited for, so the answer always comes in time.
The answer names failing dependencies only, never an error message: messages can quote a URL
with its password or a path of the host, which an unauthenticated route must not reveal. The
object store says more, in a word from a fixed list (issue 23): `full` (a deposit gets 507),
`read-only` or `unreachable` (503), so an operator sees at once why deposits are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Final

from sqlalchemy import text

from vault.storage import StoreFull, StoreUnavailable

if TYPE_CHECKING:
    from vault.parts import Vault

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 2.0
DEPENDENCIES: Final = ("database", "store", "index", "extractor")
PROBLEM_TYPE: Final = "urn:tvault:problem:not-ready"


def _database(vault: Vault) -> None:
    with vault.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _store(vault: Vault) -> None:
    # Lists at most one object: the store answers and its root (directory, bucket) exists.
    entries = vault.store.entries()
    try:
        next(iter(entries), None)
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()  # a generator: its open directory handles go now
    # Raises StoreFull or StoreUnavailable when a deposit would be refused (issue 23).
    vault.store.check_writable()


def _index(vault: Vault) -> None:
    from vault.indexing import index_of

    index_of(vault).count()


def _extractor(vault: Vault) -> None:
    # The extractor port's own check, built by vault.compose: an in-memory scratch directory,
    # and a Tika server that answers.
    vault.check_extractor(TIMEOUT_S)


PROBES: Final[dict[str, Callable[[Vault], None]]] = {
    "database": _database,
    "store": _store,
    "index": _index,
    "extractor": _extractor,
}


OK: Final = "ok"
FAILING: Final = "failing"


def _status(error: BaseException) -> str:
    if isinstance(error, StoreFull):
        return "full"
    if isinstance(error, StoreUnavailable):
        return error.cause  # "read-only" or "unreachable"
    return FAILING


def check(vault: Vault, timeout_s: float = TIMEOUT_S) -> dict[str, str]:
    """Return, for each dependency in `DEPENDENCIES`, "ok" if it answered within `timeout_s`,
    else "failing" or, for the store, "full", "read-only" or "unreachable".

    Never raises for a failing dependency; the failure's type is logged, not its message.
    """
    pool = ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(probe, vault) for name, probe in PROBES.items()}
        wait(futures.values(), timeout=timeout_s)
    finally:
        # A hung probe keeps its thread until it gives up by itself; the answer does not wait.
        pool.shutdown(wait=False, cancel_futures=True)
    ready: dict[str, str] = {}
    for name, future in futures.items():
        if future.cancelled() or not future.done():
            log.warning("readiness: %s did not answer within %.0f s", name, timeout_s)
            ready[name] = FAILING
        elif (error := future.exception()) is not None:
            log.warning("readiness: %s failed: %s", name, type(error).__name__)
            ready[name] = _status(error)
        else:
            ready[name] = OK
    return ready


def answer(ready: dict[str, str]) -> tuple[int, dict[str, object]]:
    """Return the status and JSON body of `/readyz` for `ready` (as `check` returns it).

    200 with each dependency "ok" when all are; otherwise 503 with an RFC 9457 problem whose
    `detail` and `failing` name each failing dependency (`detail` with its state unless it is
    plain "failing": "not ready: store (full)").
    """
    failing = [name for name, status in ready.items() if status != OK]
    if not failing:
        return 200, {"status": "ready", "checks": dict(ready)}
    named = [name if ready[name] == FAILING else f"{name} ({ready[name]})" for name in failing]
    return 503, {
        "type": PROBLEM_TYPE,
        "title": "Service Unavailable",
        "status": 503,
        "detail": "not ready: " + ", ".join(named),
        "failing": failing,
        "checks": dict(ready),
    }
