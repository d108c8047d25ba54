"""Fixtures of the web page tests."""

from __future__ import annotations

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
