"""`TVAULT_SEARCH_CONCURRENCY`: a server runs at most that many searches at once; the others
wait their turn (vault.compose.search_gate, used by vault/api/search_routes.py; issue 23
point 5)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.unit.vault.api_support import TestClient
from tests.unit.vault.tokens import token_for
from vault.api import search_routes
from vault.compose import app_of
from vault.parts import Vault
from vault.searching import SearchResults


@pytest.mark.parametrize("database_url", [None], ids=["sqlite"])
@pytest.mark.parametrize("limit", [1, 2])
def test_no_more_searches_run_at_once_than_the_setting_allows(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    vault.settings = vault.settings.model_copy(update={"search_concurrency": limit})
    running = 0
    most = 0
    lock = threading.Lock()

    def slow_search(*_args: object) -> SearchResults:
        # Stands in for the use case (tested on its own): it only counts who is inside.
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return SearchResults(0, 1, 20, [], {})

    monkeypatch.setattr(search_routes, "search", slow_search)
    token = token_for(vault, "lena", "lawyer")
    client = TestClient(
        app_of(vault),
        base_url="http://vault.test",
        headers={"Authorization": f"Bearer {token}"},
    )
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _n: client.post("/v1/search", json={"q": "x"}), range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert most == limit
