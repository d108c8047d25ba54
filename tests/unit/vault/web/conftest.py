"""Fixtures of the web page tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from vault import passwords


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weakest Argon2id parameters: these tests are about the pages, not the hash (whose
    production parameters, argon2-cffi's defaults, test_passwords.py checks)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    )


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
