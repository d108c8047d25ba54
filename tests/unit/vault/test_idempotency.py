"""Idempotent deposits (`Idempotency-Key`) and duplicates, through the API on SQLite and PostgreSQL.

A retry under the same key must give the first answer and store nothing; other bytes under the
key are refused (422) and store nothing; a key still in flight is refused at once (409). A
deposit of bytes the case already holds names the earlier item, or is refused on request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.unit.vault.api_support import TestClient
from tests.unit.vault.conftest import principal
from tests.unit.vault.tokens import token_for
from vault import idempotency
from vault.compose import app_of
from vault.db import Item
from vault.db.idempotency_tables import IdempotencyKey
from vault.errors import BadField
from vault.headers import to_headers
from vault.ledger.tables import LedgerRow
from vault.parts import Vault

META = to_headers({"kind": "testimony", "consent": "therapy,legal", "title": "Declaración"})
BYTES = b"testimonio de prueba, " * 1000


def _client(vault: Vault, name: str) -> TestClient:
    token = token_for(vault, name, "therapist")
    return TestClient(
        app_of(vault),
        base_url="http://vault.test",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
def tina(vault: Vault) -> Iterator[TestClient]:
    with _client(vault, "tina") as client:
        yield client


def _case(client: TestClient) -> str:
    response = client.post("/v1/cases", json={"name": "Case of the river"})
    assert response.status_code == 201, response.text
    made: str = response.json()["id"]
    return made


def _deposit(client: TestClient, case: str, data: bytes, **headers: str) -> Any:
    return client.post(f"/v1/cases/{case}/items", content=data, headers={**META, **headers})


def _items(vault: Vault, case: str) -> list[str]:
    with vault.sessions() as session:
        return list(session.scalars(select(Item.id).where(Item.case_id == case)))


def _entries(vault: Vault, case: str, action: str) -> list[dict[str, Any]]:
    with vault.sessions() as session:
        rows = session.scalars(
            select(LedgerRow).where(LedgerRow.case_id == case, LedgerRow.action == action)
        )
        return [json.loads(row.entry) for row in rows]


def _objects(vault: Vault) -> int:
    return len(list(vault.store.names("items/")))


def test_the_same_key_and_bytes_get_the_first_answer_and_store_nothing_more(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    key = {"Idempotency-Key": '"8e03978e-40d5-43e8-bc93-6894a57f9324"'}
    first = _deposit(tina, case, BYTES, **key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = _deposit(tina, case, BYTES, **key)
    assert again.status_code == 201
    assert again.content == first.content  # the same body, byte for byte
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert _items(vault, case) == [first.json()["id"]]
    assert len(_entries(vault, case, "ingestion")) == 1
    assert _objects(vault) == 1  # the retry's sealed copy was dropped before it was durable

    # A multipart retry under its own key behaves the same.
    form = {"kind": "document", "consent": "therapy", "title": "Otro"}
    files = {"file": ("otro.txt", b"otro documento", "text/plain")}
    made = tina.post(
        f"/v1/cases/{case}/items", data=form, files=files, headers={"Idempotency-Key": "k-2"}
    )
    replay = tina.post(
        f"/v1/cases/{case}/items", data=form, files=files, headers={"Idempotency-Key": "k-2"}
    )
    assert made.status_code == replay.status_code == 201
    assert replay.content == made.content
    assert len(_items(vault, case)) == 2


def test_the_same_key_with_other_bytes_is_422_and_stores_nothing(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    key = {"Idempotency-Key": '"one-key"'}
    first = _deposit(tina, case, BYTES, **key)
    assert first.status_code == 201
    other = _deposit(tina, case, BYTES + b"!", **key)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:tvault:problem:idempotency-key-reused"
    assert _items(vault, case) == [first.json()["id"]]
    assert _objects(vault) == 1
    [refused] = _entries(vault, case, "deposit refused")
    assert refused["details"]["cause"] == "idempotency-key-reused"
    # The same bytes into another case are other bytes for the key too.
    elsewhere = _deposit(tina, _case(tina), BYTES, **key)
    assert elsewhere.status_code == 422


def test_without_a_key_deposits_are_stored_and_a_repeat_names_the_first(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    first = _deposit(tina, case, BYTES)
    second = _deposit(tina, case, BYTES)
    assert first.status_code == second.status_code == 201
    assert first.json()["duplicate_of"] is None
    assert second.json()["duplicate_of"] == first.json()["id"]
    assert sorted(_items(vault, case)) == sorted([first.json()["id"], second.json()["id"]])
    entries = {e["item"]: e["details"] for e in _entries(vault, case, "ingestion")}
    assert entries[second.json()["id"]]["duplicate_of"] == first.json()["id"]
    assert "duplicate_of" not in entries[first.json()["id"]]
    # Another case's copy is no duplicate.
    assert _deposit(tina, _case(tina), BYTES).json()["duplicate_of"] is None


def test_a_duplicate_is_refused_on_request_and_nothing_is_stored(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    first = _deposit(tina, case, BYTES).json()["id"]
    refused = _deposit(tina, case, BYTES, **{"Tvault-Duplicates": "refuse"})
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:tvault:problem:duplicate"
    assert first in refused.json()["detail"]
    assert refused.json()["duplicate_of"] == first
    assert _items(vault, case) == [first]
    assert _objects(vault) == 1
    [entry] = _entries(vault, case, "deposit refused")
    assert entry["details"]["duplicate_of"] == first
    assert entry["details"]["cause"] == "duplicate"
    # New bytes under `refuse` are stored as usual.
    assert _deposit(tina, case, b"new", **{"Tvault-Duplicates": "refuse"}).status_code == 201
    assert _deposit(tina, case, b"x", **{"Tvault-Duplicates": "maybe"}).status_code == 422


def test_a_key_in_flight_is_409_until_released_or_its_lease_runs_out(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    held = idempotency.claim(vault, principal(vault, "tina"), "busy", case)
    refused = _deposit(tina, case, BYTES, **{"Idempotency-Key": "busy"})
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:tvault:problem:idempotency-in-flight"
    assert _items(vault, case) == []
    [entry] = _entries(vault, case, "deposit refused")
    assert entry["details"]["cause"] == "idempotency-in-flight"
    # A path that is no case id never reaches the ledger as one (it could be any text).
    assert _deposit(tina, "Rosa Quispe", BYTES, **{"Idempotency-Key": "busy"}).status_code == 409
    with vault.sessions() as session:
        cases = set(session.scalars(select(LedgerRow.case_id)))
    assert "Rosa Quispe" not in cases
    held.release()
    assert _deposit(tina, case, BYTES, **{"Idempotency-Key": "busy"}).status_code == 201

    # A holder that died (its server killed) stops renewing: after the lease, the key is free.
    stale = idempotency.claim(vault, principal(vault, "tina"), "orphan", case)
    stale._stop.set()  # as if its process were gone
    start = vault.clock()
    vault.clock = lambda: start + idempotency.LEASE + timedelta(seconds=1)
    taken = _deposit(tina, case, b"after the crash", **{"Idempotency-Key": "orphan"})
    assert taken.status_code == 201, taken.text


def test_keys_belong_to_one_principal_and_expire(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    first = _deposit(tina, case, BYTES, **{"Idempotency-Key": "shared"})
    with _client(vault, "theo") as theo:
        own = _deposit(theo, _case(theo), BYTES, **{"Idempotency-Key": "shared"})
    assert own.status_code == 201
    assert own.json()["id"] != first.json()["id"]  # not tina's answer

    start = vault.clock()
    vault.clock = lambda: start + idempotency.TTL + timedelta(seconds=1)
    later = _deposit(tina, case, BYTES, **{"Idempotency-Key": "shared"})
    assert later.status_code == 201
    assert "idempotent-replayed" not in later.headers
    assert later.json()["duplicate_of"] == first.json()["id"]


@pytest.mark.parametrize("value", ['"unterminated', "two words", '""', '"' + "k" * 256 + '"'])
def test_a_malformed_key_is_refused(vault: Vault, tina: TestClient, value: str) -> None:
    case = _case(tina)
    response = _deposit(tina, case, BYTES, **{"Idempotency-Key": value})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert _items(vault, case) == []


def test_parse_takes_a_string_or_a_token() -> None:
    assert idempotency.parse([]) is None
    assert idempotency.parse(['"a \\"quoted\\" key"']) == 'a "quoted" key'
    assert idempotency.parse(["f3a1-token"]) == "f3a1-token"
    with pytest.raises(BadField):
        idempotency.parse(['"a"', '"b"'])


def _touched_at(vault: Vault) -> object:
    with vault.sessions() as session:
        return session.scalars(select(IdempotencyKey.touched_at)).one()


def test_a_long_deposit_keeps_its_key_by_renewing_the_lease(
    vault: Vault, tina: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _case(tina)
    monkeypatch.setattr(idempotency, "HEARTBEAT_S", 0.05)
    start = vault.clock()
    now = [start]
    vault.clock = lambda: now[0]
    held = idempotency.claim(vault, principal(vault, "tina"), "long", case)
    try:
        now[0] = start + idempotency.LEASE + timedelta(seconds=1)  # past the first lease
        # The holder, still streaming, renews it meanwhile (every HEARTBEAT_S): seen in the
        # row, within seconds, before the second request comes.
        deadline = time.monotonic() + 10
        while _touched_at(vault) != now[0]:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.01)
        refused = _deposit(tina, case, BYTES, **{"Idempotency-Key": "long"})
        assert refused.status_code == 409
    finally:
        held.release()


def test_an_item_the_depositor_may_not_see_is_never_named_nor_refused_for(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    legal_only = to_headers({"kind": "testimony", "consent": "legal", "title": "Solo legal"})
    hidden = tina.post(f"/v1/cases/{case}/items", content=BYTES, headers=legal_only)
    assert hidden.status_code == 201
    admin_token = token_for(vault, "admin", "custodian")
    granted = tina.post(
        f"/v1/cases/{case}/grants",
        json={"user": "theo", "role": "therapist"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert granted.status_code == 204, granted.text
    with _client(vault, "theo") as theo:
        # Theo may not see a legal-only item of tina's: the answer tells him nothing of it.
        mine = _deposit(theo, case, BYTES, **{"Tvault-Duplicates": "refuse"})
        assert mine.status_code == 201, mine.text
        assert mine.json()["duplicate_of"] is None
    # Tina sees both; the earliest is named.
    assert _deposit(tina, case, BYTES).json()["duplicate_of"] == hidden.json()["id"]
