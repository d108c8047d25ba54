"""ledger.append: canonical entries, one hash chain, same transaction, serialised writers."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from policies import Principal
from vault import ledger
from vault.ledger import actions
from vault.ledger.tables import GENESIS, LedgerRow

NOW = datetime(2026, 11, 25, 11, 30, 0, 123456, tzinfo=UTC)


def check_chain(session: Session) -> list[ledger.LedgerEntry]:
    """Assert the stored ledger is gapless and chained; return its entries."""
    rows = session.execute(select(LedgerRow).order_by(LedgerRow.seq)).scalars().all()
    prev = GENESIS
    result = []
    for index, row in enumerate(rows):
        entry = ledger.entry(session, row.seq)
        assert row.seq == index == entry.seq
        assert entry.prev_hash == prev
        assert row.entry_hash == hashlib.sha256(row.entry).digest()
        assert row.leaf_hash == hashlib.sha256(b"\x00" + row.entry).digest()
        prev = row.entry_hash
        result.append(entry)
    assert ledger.size(session) == len(rows)
    return result


def test_first_entries_chain_from_genesis(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = ledger.append(
            session,
            actor="u-therapist",
            action=actions.INGESTION,
            item_id="item1",
            case_id="case1",
            details={"sha256": "ab" * 32, "size": 42},
            now=NOW,
        )
        second = ledger.append(session, actor="u-lawyer", action=actions.DECRYPTION, now=NOW)
    assert (first.seq, second.seq) == (0, 1)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.entry_hash == hashlib.sha256(first.canonical).digest()
    document = json.loads(first.canonical)
    assert document == {
        "v": 1,
        "seq": 0,
        "time": "2026-11-25T11:30:00.123456Z",
        "actor": "u-therapist",
        "action": "ingestion",
        "item": "item1",
        "case": "case1",
        "tool": "testimony-vault",
        "tool_version": "0.1.0",
        "details": {"sha256": "ab" * 32, "size": 42},
        "sealed_sha256": None,
        "prev": "00" * 32,
    }
    # RFC 8785: the stored bytes are exactly the canonical serialisation.
    assert rfc8785.dumps(document) == first.canonical
    with sessions() as session:
        entries = check_chain(session)
    assert [e.canonical for e in entries] == [first.canonical, second.canonical]


def test_time_is_stored_in_utc(sessions: sessionmaker[Session]) -> None:
    bogota = timezone(timedelta(hours=-5))
    with sessions.begin() as session:
        entry = ledger.append(
            session,
            actor="a",
            action=actions.SEARCH,
            now=datetime(2026, 11, 25, 6, 0, tzinfo=bogota),
        )
    assert json.loads(entry.canonical)["time"] == "2026-11-25T11:00:00.000000Z"
    assert entry.time == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)


def test_rollback_removes_the_entry_with_the_change(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ledger.append(session, actor="a", action=actions.INGESTION, now=NOW)
    session = sessions()
    ledger.append(session, actor="a", action=actions.INGESTION, now=NOW)
    session.rollback()
    session.close()
    with sessions.begin() as session:
        third = ledger.append(session, actor="a", action=actions.GRANT, now=NOW)
    # The rolled-back entry left no gap and no trace in the chain.
    assert third.seq == 1
    with sessions() as session:
        assert len(check_chain(session)) == 2


def test_sealed_details_are_chained_not_read(sessions: sessionmaker[Session]) -> None:
    sealed = b"age-encryption.org/v1\n-> X25519 opaque bytes of a sealed query"
    with sessions.begin() as session:
        entry = ledger.append(
            session,
            actor="u-lawyer",
            action=actions.SEARCH,
            details={"hits": 3, "scope": {"cases": ["c1"]}},
            sealed_details=sealed,
            now=NOW,
        )
    assert entry.sealed_sha256 == hashlib.sha256(sealed).hexdigest()
    assert b"opaque" not in entry.canonical
    with sessions() as session:
        assert ledger.sealed_details(session, entry.seq) == sealed
        assert ledger.sealed_details(session, 999) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "reading"}, "unknown ledger action"),
        ({"actor": ""}, "needs an actor"),
        ({"details": {"query": "what she said"}}, "must be sealed"),
        ({"details": {"scope": {"Title": "x"}}}, r"details\.scope\.Title must be sealed"),
        ({"details": {"bad": object()}}, "RFC 8785"),
        ({"details": {"big": 2**60}}, "RFC 8785"),
        ({"now": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_refuses_bad_entries_and_changes_nothing(
    sessions: sessionmaker[Session], kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"actor": "a", "action": actions.EXPORT, "now": NOW}
    arguments.update(kwargs)
    with sessions() as session:
        with pytest.raises(ledger.LedgerError, match=message):
            ledger.append(session, **arguments)  # type: ignore[arg-type]
        session.rollback()
        assert ledger.size(session) == 0


def test_every_documented_action_is_accepted(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for action in sorted(actions.ALL):
            ledger.append(session, actor="a", action=action, now=NOW)
    with sessions() as session:
        assert [e.action for e in check_chain(session)] == sorted(actions.ALL)
    assert actions.PREMIS.isdisjoint(actions.OWN)


def test_tool_and_version_are_recorded(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        entry = ledger.append(
            session,
            actor="worker",
            action=actions.METADATA_EXTRACTION,
            item_id="i",
            tool=("Apache Tika", "3.1.0"),
            now=NOW,
        )
    document = json.loads(entry.canonical)
    assert (document["tool"], document["tool_version"]) == ("Apache Tika", "3.1.0")


def test_unmigrated_database_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(text("DELETE FROM ledger_state"))
    with sessions() as session, pytest.raises(ledger.LedgerError, match="not migrated"):
        ledger.append(session, actor="a", action=actions.GRANT, now=NOW)


def test_concurrent_appends_are_gapless_and_chained(sessions: sessionmaker[Session]) -> None:
    threads, per_thread = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait()
            for index in range(per_thread):
                # Each append is its own transaction on its own connection, as requests are.
                with sessions.begin() as session:
                    ledger.append(
                        session,
                        actor=f"worker-{worker}",
                        action=actions.DECRYPTION,
                        details={"n": index},
                    )
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    with sessions() as session:
        entries = check_chain(session)
    assert len(entries) == threads * per_thread
    for worker in range(threads):
        mine = [e.details["n"] for e in entries if e.actor == f"worker-{worker}"]
        assert mine == list(range(per_thread))


def test_entries_cannot_be_updated_or_deleted(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ledger.append(session, actor="a", action=actions.GRANT, now=NOW)
    statements = ["UPDATE ledger_entries SET actor = 'b'", "DELETE FROM ledger_entries"]
    if sessions.kw["bind"].dialect.name == "postgresql":
        statements.append("TRUNCATE ledger_entries")
    for statement in statements:
        with sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
    with sessions() as session:
        assert [e.actor for e in ledger.entries(session)] == ["a"]


def test_a_refused_entry_leaves_no_gap_even_if_the_caller_commits(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        with pytest.raises(ledger.LedgerError):
            ledger.append(session, actor="a", action=actions.EXPORT, details={"x": float("nan")})
        with pytest.raises(ledger.LedgerError):
            ledger.append(session, actor="a", action=actions.EXPORT, now=datetime(2026, 1, 1))
        ledger.append(session, actor="a", action=actions.EXPORT, now=NOW)
    with sessions() as session:
        assert [e.seq for e in check_chain(session)] == [0]


def test_a_principal_as_actor_names_its_credential_which_details_cannot_override(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        by_token = Principal("lena", credential="token:abc")
        entry = ledger.append(session, actor=by_token, action=actions.SEARCH, now=NOW)
        offline = ledger.append(session, actor=Principal("lena"), action=actions.SEARCH, now=NOW)
        with pytest.raises(ledger.LedgerError, match="credential"):
            ledger.append(
                session,
                actor=by_token,
                action=actions.SEARCH,
                details={"credential": "token:forged"},
                now=NOW,
            )
    assert (entry.actor, dict(entry.details)) == ("lena", {"credential": "token:abc"})
    assert (offline.actor, dict(offline.details)) == ("lena", {})
    with sessions() as session:
        assert [e.details.get("credential") for e in check_chain(session)] == ["token:abc", None]
