"""Append to the custody ledger inside the caller's transaction, and read entries back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from policies.model import Principal
from vault.ledger import actions, mac
from vault.ledger.entry import (
    TOOL,
    TOOL_VERSION,
    LedgerEntry,
    build,
    check_details,
    format_time,
    parse,
)
from vault.ledger.errors import LedgerError
from vault.ledger.tables import HEAD, LedgerRow, LedgerState

_ENTRIES = cast(Table, LedgerRow.__table__)
_STATE = cast(Table, LedgerState.__table__)
_BATCH = 1000
CREDENTIAL: Final = "credential"  # the detail naming the credential a principal acted with

# Who an entry is written for: a principal (whose credential the entry names) or a plain name.
Actor: TypeAlias = str | Principal


def actor_name(actor: Actor) -> str:
    """Return the name `actor` is recorded under: a principal's subject, or the name itself."""
    return actor.subject if isinstance(actor, Principal) else actor


# Built once: compiling statements per call would cost more than the append itself.
_ADVANCE_HEAD = (
    update(_STATE)
    .where(_STATE.c.name == HEAD)
    .values(size=_STATE.c.size + 1)
    .returning(_STATE.c.size, _STATE.c.hash)
)
_INSERT = _ENTRIES.insert()
_SET_HEAD = (
    update(_STATE)
    .where(_STATE.c.name == HEAD)
    .values(hash=bindparam("new_hash"), mac=bindparam("new_mac"))
)


# The refusal actions: a request that wrote one of them needs no `request refused` entry.
REFUSALS: Final = frozenset({actions.ACCESS_DENIED, actions.DEPOSIT_REFUSED})
# Per request (`vault.api.refusals`): the refusal entries it wrote. A mutable list, so what a
# worker thread appends (its context is a copy) is seen by the request's own task.
_refusals: ContextVar[list[str] | None] = ContextVar("tvault_refusals", default=None)


def watch_refusals() -> Token[list[str] | None]:
    """Start noting the refusal entries appended in this context; `refusals_noted` reads them."""
    return _refusals.set([])


def unwatch_refusals(token: Token[list[str] | None]) -> None:
    """Stop noting (the `token` of `watch_refusals`)."""
    _refusals.reset(token)


def refusals_noted() -> list[str] | None:
    """Return the refusal actions appended since `watch_refusals`, or None when not watching."""
    return _refusals.get()


def append(
    session: Session,
    *,
    actor: Actor,
    action: str,
    item_id: str | None = None,
    case_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    sealed_details: bytes | None = None,
    tool: tuple[str, str] | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Append one entry to the ledger in `session`'s transaction and return it.

    The entry commits or rolls back with the change it records (the caller commits). `details`
    holds structural data only; anything promise 1 seals (queries, titles, filenames) is passed
    as `sealed_details`, bytes the caller already sealed: the ledger stores them and chains their
    SHA-256 without reading them. `tool` is `(name, version)` when a tool other than the vault
    did the work (an extractor, say).

    `actor` is the principal when one acts: the entry's actor is its subject, and the
    credential that proved it goes in `details.credential` (DESIGN.md promise 9), so a call
    site passes the principal whole and cannot forget it. A plain name is for actors no
    credential proves (the offline keyholder, the vault's own jobs).

    Concurrent appends are serialised by updating the `head` row of `ledger_state` before reading
    it: on PostgreSQL the row lock waits for the other transaction (READ COMMITTED, the default,
    then sees its result); on SQLite the update takes the database's write lock first.

    The entry and the head carry MACs under the ledger key bound to `session`
    (`vault.ledger.mac`), so no one without the keyring can rewrite or drop them unseen.

    Raises `LedgerError` on an unknown action, an empty actor, `details` that name a sealed
    field or cannot be encoded as RFC 8785 JSON, a session without the ledger key, or a database
    without the ledger tables.
    """
    if action not in actions.ALL:
        raise LedgerError(f"unknown ledger action {action!r} (see vault.ledger.actions)")
    noted = _refusals.get()
    if noted is not None and action in REFUSALS:
        noted.append(action)
    if not actor:
        raise LedgerError("a ledger entry needs an actor")
    details = dict(details or {})
    if isinstance(actor, Principal):
        if CREDENTIAL in details:
            raise LedgerError(f"details.{CREDENTIAL} is the acting principal's; do not pass it")
        if actor.credential is not None:
            details[CREDENTIAL] = actor.credential
        actor = actor.subject
    # Everything that can fail is checked before the head row moves, so a caller that catches
    # the error and commits anyway cannot leave a gap in the sequence.
    check_details(details, encodable=True)
    moment = now if now is not None else datetime.now(UTC)
    time_text = format_time(moment)  # raises on a naive time, before the lock
    tool_name, tool_version = tool if tool is not None else (TOOL, TOOL_VERSION)
    key = mac.key_of(session)

    # Take the lock first, then read the head under it.
    head = session.execute(_ADVANCE_HEAD).one_or_none()
    if head is None:
        raise LedgerError("the ledger has no head row: the database is not migrated")
    seq = int(head.size) - 1
    entry = build(
        seq=seq,
        time=moment,
        actor=actor,
        action=action,
        item_id=item_id,
        case_id=case_id,
        details=details,
        sealed=sealed_details,
        prev_hash=bytes(head.hash),
        tool=tool_name,
        tool_version=tool_version,
    )
    new_hash = entry.entry_hash
    session.execute(
        _INSERT,
        {
            "seq": seq,
            "time": time_text,
            "actor": actor,
            "action": action,
            "item_id": item_id,
            "case_id": case_id,
            "entry": entry.canonical,
            "entry_hash": new_hash,
            "leaf_hash": entry.leaf_hash,
            "sealed_details": sealed_details,
            "mac": mac.entry_mac(key, new_hash),
        },
    )
    session.execute(
        _SET_HEAD, {"new_hash": new_hash, "new_mac": mac.head_mac(key, seq + 1, new_hash)}
    )
    return entry


def size(session: Session) -> int:
    """Return the number of committed entries visible to `session`."""
    return int(session.execute(select(_STATE.c.size).where(_STATE.c.name == HEAD)).scalar_one())


def item_entries(
    session: Session, item_id: str, start: int = 0, limit: int = 100
) -> list[LedgerEntry]:
    """Return up to `limit` entries about `item_id` (its timeline) with `seq >= start`, in order.

    Raises `LedgerError` on a malformed row."""
    rows = session.execute(
        select(_ENTRIES.c.entry)
        .where(_ENTRIES.c.item_id == item_id, _ENTRIES.c.seq >= start)
        .order_by(_ENTRIES.c.seq)
        .limit(limit)
    ).all()
    return [parse(bytes(canonical)) for (canonical,) in rows]


def entries(session: Session, start: int = 0, stop: int | None = None) -> Iterator[LedgerEntry]:
    """Yield entries `start <= seq < stop` in order. Raises `LedgerError` on a malformed row."""
    # Batches by seq (keyset pagination), not a server-side cursor left open by a caller that
    # stops early.
    position = start
    while stop is None or position < stop:
        query = (
            select(_ENTRIES.c.seq, _ENTRIES.c.entry)
            .where(_ENTRIES.c.seq >= position)
            .order_by(_ENTRIES.c.seq)
            .limit(_BATCH)
        )
        if stop is not None:
            query = query.where(_ENTRIES.c.seq < stop)
        rows = session.execute(query).all()
        if not rows:
            return
        for _seq, canonical in rows:
            yield parse(bytes(canonical))
        position = int(rows[-1][0]) + 1


def entry(session: Session, seq: int) -> LedgerEntry:
    """Return entry `seq`. Raises `LedgerError` if there is none."""
    canonical = session.execute(
        select(_ENTRIES.c.entry).where(_ENTRIES.c.seq == seq)
    ).scalar_one_or_none()
    if canonical is None:
        raise LedgerError(f"no ledger entry {seq}")
    return parse(bytes(canonical))


def sealed_details(session: Session, seq: int) -> bytes | None:
    """Return the sealed details stored with entry `seq`, still sealed."""
    value = session.execute(
        select(_ENTRIES.c.sealed_details).where(_ENTRIES.c.seq == seq)
    ).scalar_one_or_none()
    return bytes(value) if value is not None else None
