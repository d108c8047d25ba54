"""A session's `seen_at` is written at most once a minute (`sessions.seen_interval`), not on
every page: a page view within the interval writes nothing. The idle timeout stays a bound
on the server: a session idle past it after its last request is refused, at most one interval
early, never late; sign-out still ends it at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.unit.vault.web.web_support import entries, later, signed_in, token
from vault import ledger
from vault.db.web_tables import WebSession
from vault.parts import Vault
from vault.web import sessions


def _seen(vault: Vault) -> datetime:
    with vault.sessions() as session:
        [seen] = session.scalars(select(WebSession.seen_at)).all()
        return seen


@contextmanager
def _session_writes(vault: Vault) -> Iterator[list[str]]:
    """Collect the statements that write `web_sessions` while the block runs."""
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = statement.lower()
        if "web_sessions" in text and text.lstrip().startswith(("update", "insert", "delete")):
            writes.append(statement)

    event.listen(vault.engine, "before_cursor_execute", seen)
    try:
        yield writes
    finally:
        event.remove(vault.engine, "before_cursor_execute", seen)


def test_the_interval_is_a_minute_or_a_tenth_of_a_short_idle_timeout(vault: Vault) -> None:
    assert vault.settings.web_session_idle_seconds == 30 * 60
    assert sessions.seen_interval(vault) == timedelta(seconds=60)
    vault.settings = vault.settings.model_copy(update={"web_session_idle_seconds": 300})
    assert sessions.seen_interval(vault) == timedelta(seconds=30)


@pytest.mark.both_databases
def test_a_page_within_the_interval_writes_nothing_to_the_session(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    assert client.get("/").status_code == 200
    first = _seen(vault)
    later(vault, 59)
    with _session_writes(vault) as writes:
        assert client.get("/").status_code == 200
        assert client.get("/deposits").status_code == 200
    assert writes == [] and _seen(vault) == first
    later(vault, 1)  # a minute since it was written: this page writes it
    with _session_writes(vault) as writes:
        assert client.get("/").status_code == 200
    assert len(writes) == 1 and _seen(vault) == vault.clock()


@pytest.mark.both_databases
def test_a_session_idle_past_its_timeout_is_refused_at_most_a_minute_early(vault: Vault) -> None:
    idle = vault.settings.web_session_idle_seconds
    client = signed_in(vault, "tina")
    assert client.get("/").status_code == 200
    recorded = _seen(vault)
    later(vault, 59)  # the last request: not written, it falls in the interval
    assert client.get("/").status_code == 200 and _seen(vault) == recorded
    # Idle since that last request for `idle - 58` s: past `idle` from the recorded time.
    later(vault, idle - 58)
    page = client.get("/")
    assert page.status_code == 401 and "Your session ended" in page.text
    [ended] = entries(vault, ledger.actions.SIGN_OUT)
    assert ended.details["reason"] == "expired"


@pytest.mark.both_databases
def test_a_session_used_every_59_seconds_stays_open_past_the_idle_timeout(vault: Vault) -> None:
    idle = vault.settings.web_session_idle_seconds
    client = signed_in(vault, "tina")
    for _ in range(2 * idle // 59):
        later(vault, 59)
        assert client.get("/").status_code == 200
    assert not entries(vault, ledger.actions.SIGN_OUT)
    # Exactly the idle timeout after the last written request still opens; a second more does
    # not, whatever came in between unwritten.
    last_written = _seen(vault)
    vault.clock = lambda: last_written + timedelta(seconds=idle)
    assert client.get("/").status_code == 200
    vault.clock = lambda: _seen(vault) + timedelta(seconds=idle + 1)
    assert client.get("/").status_code == 401


@pytest.mark.both_databases
def test_sign_out_within_the_interval_ends_the_session_at_once(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    home = client.get("/")
    later(vault, 10)  # seen_at not written again: sign-out does not wait for it
    stolen = dict(client.cookies)
    out = client.post("/sign-out", data={"csrf": token(home)})
    assert out.status_code == 303
    with vault.sessions() as session:
        assert session.scalars(select(WebSession)).all() == []
    client.cookies.update(stolen)
    assert client.get("/").status_code == 401
    [ended] = entries(vault, ledger.actions.SIGN_OUT)
    assert ended.details["reason"] == "signed out"
