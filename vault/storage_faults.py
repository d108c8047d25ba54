"""A store that cannot take more: the deposit's answer (507 or 503), its ledger entry, the wait.

Issue 23 point 3. A deposit into a full object store (ENOSPC, EDQUOT, an S3 "storage full" or
quota answer) is refused with `StorageFull` (507 Insufficient Storage); into a read-only,
unwritable or unreachable one with `StorageUnavailable` (503 with Retry-After). A metadata
database that is full is refused like a full store (the object written before is removed, as
after any failed commit). Each refusal is a `deposit refused` ledger entry naming the cause; if
the ledger itself cannot be written (the database's disk is the full one), the refusal is still
answered, and logged as unrecorded. Workers that meet the same faults wait (`wait_seconds`)
instead of charging attempts (`vault.worker`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Final

from sqlalchemy.exc import DBAPIError

from policies import Principal, actions
from vault import ledger
from vault.errors import StorageFull, StorageUnavailable
from vault.parts import Vault
from vault.storage import StoreFull, StoreUnavailable

log = logging.getLogger(__name__)

# Causes, as the problem's `cause` member, the ledger entry and `/readyz` name them.
STORE_FULL: Final = "store-full"
STORE_READ_ONLY: Final = "store-read-only"
STORE_UNREACHABLE: Final = "store-unreachable"
DATABASE_FULL: Final = "database-full"
CAUSES: Final = frozenset({STORE_FULL, STORE_READ_ONLY, STORE_UNREACHABLE, DATABASE_FULL})

# What a refused client is told to wait (RFC 9110 10.2.3): an operator has to act, so asking
# again within seconds only adds load.
RETRY_AFTER_S: Final = 30.0
# A worker's first wait after a store fault is the job backoff; it doubles up to this.
MAX_WAIT_S: Final = 60.0

_SQLITE_FULL: Final = 13  # SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL: Final = "53100"  # SQLSTATE disk_full


def database_full(exc: BaseException) -> bool:
    """Return whether `exc` is the metadata database saying its disk is full."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


def store_fault(exc: BaseException) -> str | None:
    """Return the cause if `exc` says the store (or the database) cannot take data now, else
    None: the faults no request and no retry of the same job can mend, only time or an
    operator."""
    if isinstance(exc, StoreFull):
        return STORE_FULL
    if isinstance(exc, StoreUnavailable):
        return STORE_UNREACHABLE if exc.cause == "unreachable" else STORE_READ_ONLY
    if database_full(exc):
        return DATABASE_FULL
    return None


def refusal(cause: str) -> StorageFull | StorageUnavailable:
    """Return the error a client gets for `cause` (one of `CAUSES`); `detail` says what to do."""
    if cause == STORE_FULL:
        return StorageFull("the object store is full: an operator must free space", cause)
    if cause == DATABASE_FULL:
        return StorageFull("the metadata database is full: an operator must free space", cause)
    if cause == STORE_READ_ONLY:
        detail = "the object store is read-only or not writable: try again later"
    else:
        detail = "the object store cannot be reached: try again later"
    return StorageUnavailable(detail, cause, RETRY_AFTER_S)


def record(vault: Vault, principal: Principal, case_id: str | None, cause: str) -> bool:
    """Commit a `deposit refused` entry for `cause` in its own transaction; return whether it
    committed. Never raises: when the database is the full one, the entry cannot be written,
    and the client must still get its answer (the log says the refusal went unrecorded)."""
    try:
        with vault.sessions.begin() as session:
            ledger.append(
                session,
                actor=principal,
                action=ledger.actions.DEPOSIT_REFUSED,
                case_id=case_id,
                details={"attempted": actions.ITEM_DEPOSIT, "cause": cause},
            )
    except Exception as exc:
        log.error(
            "deposit refused (%s); the refusal could not be recorded in the ledger: %s",
            cause,
            type(exc).__name__,
        )
        return False
    log.warning("deposit refused: %s", cause)
    return True


@contextlib.contextmanager
def refusing(vault: Vault, principal: Principal, case_id: str) -> Iterator[None]:
    """Turn a store or database fault raised inside into `StorageFull` / `StorageUnavailable`,
    after recording the refusal (`record`); let every other error through unchanged."""
    try:
        yield
    except Exception as exc:
        cause = store_fault(exc)
        if cause is None:
            raise
        record(vault, principal, case_id, cause)
        raise refusal(cause) from exc


def wait_seconds(faults: int, base_seconds: float) -> float:
    """Return how long a worker waits after its `faults`-th store fault in a row (1-based):
    `base_seconds` (at least 0.1 s) doubled each time, capped at `MAX_WAIT_S`."""
    return float(min(max(base_seconds, 0.1) * 2 ** max(faults - 1, 0), MAX_WAIT_S))
