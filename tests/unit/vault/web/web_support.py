"""Test helper: a browser-like client of a vault's app (cookies kept, redirects not followed)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI

from tests.unit.vault.api_support import TestClient
from vault import ledger, passwords
from vault.accounts import OFFLINE, OFFLINE_ACTOR
from vault.compose import app_of
from vault.parts import Vault

URL = "http://vault.test"
PASSWORD = "a long enough password"
_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')
_FORM = re.compile(r'name="form" value="([^"]+)"')


def browser(app: FastAPI, language: str = "en") -> TestClient:
    """Return a client that keeps cookies and shows each redirect, speaking `language`."""
    return TestClient(
        app, base_url=URL, follow_redirects=False, headers={"Accept-Language": language}
    )


def token(page: httpx.Response) -> str:
    """Return the CSRF token a page's forms carry."""
    found = _TOKEN.search(page.text)
    assert found, page.text
    return found.group(1)


def form_id(page: httpx.Response) -> str:
    """Return the one-time id of the deposit form on a page."""
    found = _FORM.search(page.text)
    assert found, page.text
    return found.group(1)


def with_password(vault: Vault, name: str, password: str = PASSWORD) -> None:
    """Give `name` a password, as `tvault users passwd` does."""
    passwords.set_password(vault, name, password, actor=OFFLINE_ACTOR, via=OFFLINE)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> httpx.Response:
    """Open the sign-in form, then send it."""
    form = client.get("/sign-in")
    return client.post("/sign-in", data={"csrf": token(form), "name": name, "password": password})


def signed_in(vault: Vault, name: str) -> TestClient:
    """Return a client signed in as `name` (given a password first)."""
    with_password(vault, name)
    client = browser(app_of(vault))
    answer = sign_in(client, name)
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return client


def entries(vault: Vault, action: str) -> list[ledger.LedgerEntry]:
    """Return the ledger's entries of `action`, oldest first."""
    with vault.sessions() as session:
        return [e for e in ledger.entries(session) if e.action == action]


def later(vault: Vault, seconds: float) -> None:
    """Move the vault's clock forward by `seconds`."""
    now: datetime = vault.clock()
    vault.clock = lambda: now + timedelta(seconds=seconds)
