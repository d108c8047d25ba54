"""Every refused request on an item or a case is one ledger entry (docs/ledger.md, issue 20.8).

A refusal already recorded where it was decided (`access denied`, `deposit refused`) is not
recorded twice; the others get one `deposit refused` (a deposit) or `request refused` entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.unit.vault.api_support import TestClient
from tests.unit.vault.tokens import token_for
from vault import ledger
from vault.compose import app_of
from vault.db import Item
from vault.headers import to_headers
from vault.parts import Vault

META = {"kind": "testimony", "consent": "therapy", "title": "T"}
REFUSALS = {
    ledger.actions.ACCESS_DENIED,
    ledger.actions.DEPOSIT_REFUSED,
    ledger.actions.REQUEST_REFUSED,
}


def _client(vault: Vault, name: str, role: str) -> TestClient:
    token = token_for(vault, name, role)
    return TestClient(
        app_of(vault),
        base_url="http://vault.test",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
def tina(vault: Vault) -> Iterator[TestClient]:
    with _client(vault, "tina", "therapist") as client:
        yield client


@pytest.fixture
def case_id(tina: TestClient) -> str:
    response = tina.post("/v1/cases", json={"name": "Case of the river"})
    assert response.status_code == 201, response.text
    made: str = response.json()["id"]
    return made


def _entries(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return list(ledger.entries(session))


def _refused_after(vault: Vault, before: int) -> list[ledger.LedgerEntry]:
    """The entries written since `before`, which must all be refusals."""
    new = _entries(vault)[before:]
    assert {e.action for e in new} <= REFUSALS, [e.action for e in new]
    return new


def _items(vault: Vault) -> int:
    with vault.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Item)) or 0)


def test_a_sealed_field_in_the_query_string_is_one_deposit_refused_entry(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    before = len(_entries(vault))
    refused = tina.post(
        f"/v1/cases/{case_id}/items",
        params={"notes": "Rosa Quispe"},
        headers=to_headers(META),
        content=b"testimony",
    )
    assert refused.status_code == 400, refused.text
    [entry] = _refused_after(vault, before)
    assert (entry.action, entry.case_id, entry.item_id) == (
        ledger.actions.DEPOSIT_REFUSED,
        case_id,
        None,
    )
    assert entry.actor == "tina"
    assert {k: entry.details[k] for k in ("attempted", "cause")} == {
        "attempted": "item.deposit",
        "cause": "misplaced-field",
    }
    assert "Rosa" not in json.dumps(entry.details)  # never the sealed value
    assert _items(vault) == 0


def test_a_consent_change_naming_an_unknown_scope_is_one_request_refused_entry(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    made = tina.post(f"/v1/cases/{case_id}/items", headers=to_headers(META), content=b"x")
    assert made.status_code == 201, made.text
    item_id = made.json()["id"]
    consent = tina.get(f"/v1/items/{item_id}/consent").json()
    before = len(_entries(vault))
    refused = tina.post(
        f"/v1/items/{item_id}/consent",
        json={"grant": ["no-such-scope"], "basis": "depositor_confirmation"},
    )
    assert refused.status_code == 422, refused.text
    [entry] = _refused_after(vault, before)
    assert (entry.action, entry.item_id) == (ledger.actions.REQUEST_REFUSED, item_id)
    assert entry.details["attempted"] == "POST /v1/items/{item_id}/consent"
    assert entry.details["cause"] == "bad-field"
    assert "no-such-scope" not in json.dumps(entry.details)
    assert tina.get(f"/v1/items/{item_id}/consent").json() == consent  # nothing changed


def test_a_grant_of_an_unknown_role_is_one_request_refused_entry(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    with _client(vault, "admin", "custodian") as admin:
        before = len(_entries(vault))
        refused = admin.post(
            f"/v1/cases/{case_id}/grants", json={"user": "tina", "role": "emperor"}
        )
        assert refused.status_code == 422, refused.text
    [entry] = _refused_after(vault, before)
    assert (entry.action, entry.case_id, entry.actor) == (
        ledger.actions.REQUEST_REFUSED,
        case_id,
        "admin",
    )
    assert entry.details["attempted"] == "POST /v1/cases/{case_id}/grants"
    assert entry.details["cause"] == "bad-field"


def test_refusals_recorded_where_decided_are_not_recorded_twice(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    # An unknown item: the `access denied` entry of vault.access only.
    before = len(_entries(vault))
    assert tina.get("/v1/items/" + "a" * 26).status_code == 404
    [denied] = _refused_after(vault, before)
    assert denied.action == ledger.actions.ACCESS_DENIED
    # A deposit over the limit: the `deposit refused` entry of vault.api.refusals only.
    vault.settings = vault.settings.model_copy(update={"max_upload_bytes": 1024})
    before = len(_entries(vault))
    big = tina.post(f"/v1/cases/{case_id}/items", headers=to_headers(META), content=b"x" * 4096)
    assert big.status_code == 413, big.text
    [refused] = _refused_after(vault, before)
    assert (refused.action, refused.details["cause"]) == (
        ledger.actions.DEPOSIT_REFUSED,
        "too-large",
    )


def test_an_unauthenticated_request_is_not_recorded_per_request(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    before = len(_entries(vault))
    with TestClient(app_of(vault), base_url="http://vault.test") as anonymous:
        assert anonymous.get(f"/v1/cases/{case_id}/items").status_code == 401
    new = _refused_after(vault, before)
    # Only the rate-limited `authenticate` refusal of vault.api.deps, no request entry.
    assert [e.details["attempted"] for e in new] == ["authenticate"]
