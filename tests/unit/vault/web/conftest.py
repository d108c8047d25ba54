"""Fixtures of the web page tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from vault import passwords


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weakest Argon2id parameters (one pass over 8 KiB, the least RFC 9106 allows): these
    tests are about the pages, not the hash (whose production parameters, argon2-cffi's
    defaults, test_passwords.py checks). A hash at production parameters takes 0.1-0.2 s of CPU
    here, and so does the stand-in that a wrong name is checked against (`_DUMMY`)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "_HASHER", hasher)
    monkeypatch.setattr(passwords, "_DUMMY", hasher.hash("a stand-in password"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Page logic runs on SQLite only; tests marked `both_databases` (sessions, the ledger
    entries of sign-in, deposits, verification) also run on PostgreSQL."""
    here = str(Path(__file__).parent)
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgres"
        if (
            on_postgres
            and str(item.path).startswith(here)
            and item.get_closest_marker("both_databases") is None
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
