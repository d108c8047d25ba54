"""Test helper: run `tvault` client commands in-process against a vault's real API app."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from typer.testing import CliRunner, Result

from tests.unit.vault.api_support import TestClient
from tests.unit.vault.tokens import token_for
from vault.cli import app as cli
from vault.cli import common
from vault.compose import app_of
from vault.parts import Vault

URL = "http://vault.test"
ROLES = {
    "admin": "custodian",
    "cleo": "custodian",  # the second custodian of the two-person rule; tests add her
    "tina": "therapist",
    "theo": "therapist",
    "lena": "lawyer",
    "audrey": "auditor",  # tests that need her add her
    "truth": "commission",  # a truth commission (exports); tests add it
}

Run = Callable[..., Result]


def cli_runner(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Return `run(user, *args, input=None)`: `tvault ARGS` as `user`, `input` on its stdin,
    its HTTP calls served in-process."""
    app = app_of(vault)

    def connect(url: str, token: str) -> httpx.Client:
        return TestClient(app, base_url=URL, headers={"Authorization": f"Bearer {token}"})

    monkeypatch.setattr(common, "connect", connect)

    def run(user: str, *args: str, input: str | None = None) -> Result:
        env = {"TVAULT_TOKEN": token_for(vault, user, ROLES[user]), "TVAULT_URL": URL}
        return CliRunner().invoke(cli, list(args), env=env, input=input)

    return run
