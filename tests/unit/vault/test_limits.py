"""Limits an attacker cannot turn around: the refused-token budget.

Others' failures never lock a valid token out; refused attempts are counted per address and
per claimed account. The header cap, under a real uvicorn, is tests/integration/test_limits.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi import FastAPI

from tests.unit.vault.api_support import TestClient
from tests.unit.vault.tokens import token_for
from vault.compose import app_of
from vault.parts import Vault


def _forged(subject: str) -> str:
    """A token claiming `subject`, signed by nobody the vault knows."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return ".".join([part({"alg": "ES256", "kid": "x"}), part({"sub": subject}), "c2ln"])


@pytest.fixture
def app(vault: Vault) -> FastAPI:
    return app_of(vault)


def _client(app: FastAPI, address: str, token: str | None = None) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url="http://vault.test", headers=headers, client=(address, 4000))


def test_a_valid_token_is_never_refused_because_others_failed(app: FastAPI, vault: Vault) -> None:
    burst = vault.settings.auth_failure_burst
    with _client(app, "10.0.0.1") as anonymous:
        answers = [anonymous.get("/v1/me").status_code for _ in range(burst + 5)]
    assert answers[:burst] == [401] * burst and set(answers[burst:]) == {429}
    # The same address, now with the custodian's valid token: heard at once.
    with _client(app, "10.0.0.1", token_for(vault, "admin", "custodian")) as admin:
        me = admin.get("/v1/me")
    assert me.status_code == 200 and me.json()["name"] == "admin"


def test_refused_attempts_against_one_account_are_counted_from_any_address(
    app: FastAPI, vault: Vault
) -> None:
    burst = vault.settings.auth_failure_burst
    answers = []
    for n in range(burst + 3):  # a fresh address for every guess
        with _client(app, f"10.1.0.{n}", _forged("lena")) as guesser:
            answers.append(guesser.get("/v1/me").status_code)
    assert answers[:burst] == [401] * burst and set(answers[burst:]) == {429}
    # Another account's refusals, and a fresh address without a token, still get 401 ...
    with _client(app, "10.2.0.1", _forged("tina")) as other:
        assert other.get("/v1/me").status_code == 401
    # ... and lena's own valid token is heard.
    with _client(app, "10.1.0.1", token_for(vault, "lena", "lawyer")) as lena:
        assert lena.get("/v1/me").status_code == 200
