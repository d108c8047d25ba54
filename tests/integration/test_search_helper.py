"""The search helper process: pages shown with its help are the pages shown without it, and a
helper that is busy, dead, hung or slow to start never costs a search its results."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

import keys
from search.highlight import Highlighter
from tests.unit.vault.conftest import _clean_env, database_url, principal, vault
from tests.unit.vault.search_support import deposit, give_text
from vault import compose, ledger, search_helper
from vault.cases import create_case, grant
from vault.indexing import index_item, item_identity
from vault.parts import Vault
from vault.search_helper import SearchHelper, SearchHelpers, Showable, show
from vault.searching import SearchRequest, SearchResults, search

# The vault fixtures of the unit tests, used here by importing them (this file starts processes).
__all__ = ["_clean_env", "database_url", "vault"]

ITEMS = 9  # above MIN_HELPED_HITS, so a page is split
TEXT = "Durante la detención en la comisaría recibí golpes. Testimonio número {n}, palabra{n}."


@pytest.fixture
def world(vault: Vault) -> list[str]:
    """A case by tina with ITEMS testimonies that all match "detencion"; lena granted on it."""
    tina = principal(vault, "tina")
    case_id = create_case(vault, tina, "Caso").id
    grant(vault, principal(vault, "admin"), case_id, "lena", "lawyer")
    tina = principal(vault, "tina")
    items = []
    for n in range(ITEMS):
        item_id = deposit(vault, tina, case_id, consent={"legal"}, title=f"Testimonio {n}")
        give_text(vault, item_id, TEXT.format(n=n))
        assert index_item(vault, item_id).outcome == "indexed"
        items.append(item_id)
    return items


@pytest.fixture
def helper(vault: Vault) -> Iterator[SearchHelper]:
    started = SearchHelper(vault.settings, vault.child_store, timeout=5.0)
    started.start()
    _wait_alive(started)
    vault.search_helper = started
    yield started
    vault.search_helper = None
    started.stop()


def _wait_alive(helper: SearchHelper, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not helper.alive:
        assert time.monotonic() < deadline, "the helper process did not start"
        time.sleep(0.05)


def _page(vault: Vault) -> SearchResults:
    return search(vault, principal(vault, "lena"), SearchRequest(text="detencion"))


def _shown(results: SearchResults) -> list[tuple[str, str | None, str | None]]:
    return [(hit.item_id, hit.title, hit.snippet) for hit in results.hits]


def test_a_page_shown_with_the_helper_is_the_page_shown_without_it(
    vault: Vault, world: list[str], helper: SearchHelper
) -> None:
    vault.search_helper = None
    alone = _page(vault)
    assert len(alone.hits) == ITEMS
    assert all(hit.title and "<mark>detención</mark>" in (hit.snippet or "") for hit in alone.hits)
    vault.search_helper = helper
    helped = _page(vault)
    assert helper.helped == 1  # the helper answered for part of this page
    assert _shown(helped) == _shown(alone)
    assert (helped.total, helped.facets) == (alone.total, alone.facets)


def test_a_busy_helper_is_not_waited_for(
    vault: Vault, world: list[str], helper: SearchHelper
) -> None:
    expected = _shown(_page(vault))
    with helper._busy:  # another request holds it
        assert helper.submit("detencion", [_showable(vault, world[0])]) is None
        assert _shown(_page(vault)) == expected
    assert helper.helped == 1  # only the first page


def test_a_killed_helper_costs_nothing_and_is_replaced(
    vault: Vault, world: list[str], helper: SearchHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _shown(_page(vault))
    helper._process.kill()
    helper._process.join(timeout=10)
    assert _shown(_page(vault)) == expected  # shown by the request's thread
    assert not helper.alive
    monkeypatch.setattr(search_helper, "RESTART_SECONDS", 0.0)
    helper._restart_at = 0.0
    _wait_alive(helper)  # a new helper was started
    before = helper.helped
    assert _shown(_page(vault)) == expected
    assert helper.helped == before + 1


def test_a_helper_that_does_not_answer_is_given_up_after_its_timeout(
    vault: Vault, world: list[str], helper: SearchHelper
) -> None:
    expected = _shown(_page(vault))
    helper._timeout = 0.5
    os.kill(helper._process.pid, signal.SIGSTOP)  # hung: alive but silent
    began = time.monotonic()
    assert _shown(_page(vault)) == expected
    assert 0.5 <= time.monotonic() - began < 5
    assert helper._process is None  # stopped (killed), to be replaced later


def test_a_helper_that_is_not_ready_yet_is_not_used(vault: Vault, world: list[str]) -> None:
    expected = _shown(_page(vault))
    starting = SearchHelper(vault.settings, vault.child_store)
    vault.search_helper = starting  # never started
    try:
        assert _shown(_page(vault)) == expected
        assert starting.helped == 0
    finally:
        vault.search_helper = None


def test_the_helper_keeps_no_identity_after_a_page(
    vault: Vault, world: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The helper's loop, run on a thread of this process so its identity cache can be seen.
    monkeypatch.setenv("TVAULT_PASSPHRASE", "inherited from the server")
    parent, child = multiprocessing.Pipe()
    loop = threading.Thread(
        target=search_helper._serve, args=(child, vault.child_store, vault.settings.model_dump())
    )
    loop.start()
    try:
        assert parent.recv() == "ready"
        assert "TVAULT_PASSPHRASE" not in os.environ  # dropped before anything else
        one = _showable(vault, world[0])
        keys.forget_identities()
        parent.send(("detencion", [one]))
        [shown] = parent.recv()
        assert shown.title == "Testimonio 0" and "<mark>detención</mark>" in shown.snippet
        assert one.identity not in keys.age._IDENTITIES
    finally:
        parent.close()
        loop.join(timeout=10)
    assert not loop.is_alive()  # the loop ends when the pipe closes


def test_show_names_what_does_not_open_and_nothing_of_it(vault: Vault, world: list[str]) -> None:
    good = _showable(vault, world[0])
    other, _ = keys.generate_identity()
    wrong = Showable(good.item_id, other, good.sealed_meta, good.text_object, "es")
    shown = show(vault.store, Highlighter("detencion"), wrong)
    assert (shown.title, shown.snippet) == (None, None)
    assert shown.problems == ("metadata", "text (UnsealError)")
    missing = Showable(good.item_id, good.identity, good.sealed_meta, "texts/gone", "es")
    shown = show(vault.store, Highlighter("detencion"), missing)
    assert shown.title == "Testimonio 0" and shown.snippet is None
    assert shown.problems == ("text (ObjectNotFound)",)


def _showable(vault: Vault, item_id: str) -> Showable:
    from vault.db import Item
    from vault.db.jobs_tables import ItemText

    with vault.sessions() as session:
        identity = item_identity(vault, session, item_id)
        item = session.get(Item, item_id)
        text = session.get(ItemText, item_id)
        assert identity is not None and item is not None and text is not None
        return Showable(item_id, identity, item.sealed_meta, text.object_name, "es")


def test_a_small_page_is_shown_without_the_helper(
    vault: Vault, world: list[str], helper: SearchHelper
) -> None:
    small = search_helper.MIN_HELPED_HITS - 1
    lena = principal(vault, "lena")
    page = search(vault, lena, SearchRequest(text="detencion", page_size=small))
    assert len(page.hits) == small and all(hit.snippet for hit in page.hits)
    assert helper.helped == 0  # the pipe would cost more than it saves


def test_a_helped_page_is_recorded_with_exactly_the_ids_it_returns(
    vault: Vault, world: list[str], helper: SearchHelper
) -> None:
    page = _page(vault)
    assert helper.helped == 1
    with vault.sessions() as session:
        [entry] = [e for e in ledger.entries(session) if e.action == ledger.actions.SEARCH]
    assert entry.actor == "lena"
    assert entry.details["results"] == [hit.item_id for hit in page.hits]
    assert entry.details["total"] == page.total == ITEMS


def test_no_page_is_shown_when_its_custody_entry_fails_and_the_helper_is_freed(
    vault: Vault, world: list[str], helper: SearchHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the ledger is unavailable")

    with monkeypatch.context() as patched:
        patched.setattr(ledger, "append", refuse)
        with pytest.raises(RuntimeError, match="ledger is unavailable"):
            _page(vault)
    assert not helper._busy.locked()  # its answer was collected and dropped
    assert len(_page(vault).hits) == ITEMS  # and it serves the next page
    assert helper.helped == 2


def test_the_helper_is_never_handed_the_passphrase(vault: Vault) -> None:
    settings = vault.settings.model_copy(update={"passphrase": SecretStr("a secret phrase")})
    helper = SearchHelper(settings, compose.child_store)
    assert "passphrase" not in helper._settings
    assert "a secret phrase" not in repr(helper._settings)


def test_a_helper_that_cannot_start_leaves_searches_working(
    vault: Vault, world: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _shown(_page(vault))

    def refuse(self: object) -> None:
        raise OSError("no more processes")

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", refuse)
    helper = SearchHelper(vault.settings, vault.child_store)
    helper.start()  # logged, not raised: the server starts without it
    vault.search_helper = helper
    try:
        assert not helper.alive
        assert _shown(_page(vault)) == expected
    finally:
        vault.search_helper = None
        helper.stop()


def test_ctrl_c_to_the_process_group_leaves_the_helper_quiet(
    vault: Vault, capfd: pytest.CaptureFixture[str]
) -> None:
    started = SearchHelper(vault.settings, vault.child_store, timeout=5.0)
    started.start()
    try:
        _wait_alive(started)
        # Ctrl-C on a terminal signals the whole process group: the helper too. The server
        # stops it in its own time; the helper must not print a traceback meanwhile.
        os.kill(started._process.pid, signal.SIGINT)
        time.sleep(1.0)
        assert started.alive
    finally:
        started.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_most_of_a_page_goes_to_the_helper(
    vault: Vault, world: list[str], helper: SearchHelper, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's process is bound by its interpreter lock under load: the helper shows
    # three quarters of the page (after its head start), the request's thread the rest.
    sent: list[int] = []
    submit = helper.submit

    def counting(query_text: str, hits: list[Showable]) -> search_helper.Pending | None:
        sent.append(len(hits))
        return submit(query_text, hits)

    monkeypatch.setattr(helper, "submit", counting)
    page = _page(vault)
    assert sent == [8]  # of 9 hits: int((9 - 2 head start + 4 for the custody entry) * 3/4)
    assert helper.helped == 1 and len(page.hits) == ITEMS


def test_two_pages_at_once_each_have_a_helper(vault: Vault, world: list[str]) -> None:
    alone = _shown(_page(vault))
    helpers = SearchHelpers(
        [SearchHelper(vault.settings, vault.child_store, timeout=5.0) for _ in range(2)]
    )
    helpers.start()
    try:
        deadline = time.monotonic() + 60
        while not helpers.alive:
            assert time.monotonic() < deadline, "the helper processes did not start"
            time.sleep(0.05)
        vault.search_helper = helpers
        first, second = helpers._helpers
        with first._busy:  # another request's page holds the first helper
            assert _shown(_page(vault)) == alone
        assert (first.helped, second.helped) == (0, 1)
        with first._busy, second._busy:  # both busy: the request shows its page itself
            assert _shown(_page(vault)) == alone
        assert helpers.helped == 1
        assert _shown(_page(vault)) == alone
        assert (first.helped, second.helped) == (1, 1)
    finally:
        vault.search_helper = None
        helpers.stop()


def test_a_helper_per_search_the_gate_lets_through_at_most_one_per_core(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for concurrency, count in ((1, 1), (2, 2), (8, 2)):
        settings = vault.settings.model_copy(update={"search_concurrency": concurrency})
        assert len(SearchHelpers.for_settings(settings, vault.child_store)._helpers) == count
