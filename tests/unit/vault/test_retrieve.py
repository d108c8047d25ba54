"""Retrieve: allowed readers see titles and download plaintext; every download is recorded."""

from __future__ import annotations

import hashlib

import pytest

from tests.unit.vault.conftest import principal
from tests.unit.vault.deposit_support import BODY, deposit, fields
from vault import ledger
from vault.cases import create_case, grant, list_cases
from vault.errors import NotFound
from vault.parts import Vault
from vault.retrieve import download, list_items, show_item


@pytest.fixture
def item(vault: Vault) -> tuple[str, str]:
    case = create_case(vault, principal(vault, "tina"), "Case of the river")
    result = deposit(vault, "tina", BODY, fields(case.id))
    return case.id, result.item_id


def test_the_depositor_reads_metadata_and_downloads(vault: Vault, item: tuple[str, str]) -> None:
    case_id, item_id = item
    tina = principal(vault, "tina")
    view = show_item(vault, tina, item_id)
    assert (view.title, view.filename, view.notes) == (
        "Testimony of R.",
        "r.pdf",
        "recorded in the clinic",
    )
    assert [v.title for v in list_items(vault, tina, case_id)] == ["Testimony of R."]
    got = download(vault, tina, item_id)
    data = b"".join(got.chunks)
    assert data == BODY and hashlib.sha256(data).hexdigest() == got.item.sha256
    with vault.sessions() as session:
        last = list(ledger.entries(session))[-1]
    assert (last.action, last.actor, last.item_id) == (ledger.actions.DECRYPTION, "tina", item_id)
    assert last.details == {"purpose": "download"}


def test_others_are_refused_and_each_refusal_is_recorded(
    vault: Vault, item: tuple[str, str]
) -> None:
    _, item_id = item
    for user in ("theo", "admin", "lena"):
        # Issue 7 point 6: an item the caller may not see is "not found", like an unknown id.
        with pytest.raises(NotFound, match=f"^no item {item_id}$"):
            download(vault, principal(vault, user), item_id)
        with pytest.raises(NotFound, match=f"^no item {item_id}$"):
            show_item(vault, principal(vault, user), item_id)
    with vault.sessions() as session:
        denied = [e for e in ledger.entries(session) if e.action == ledger.actions.ACCESS_DENIED]
    assert len(denied) == 6


def test_a_granted_lawyer_reads_items_with_legal_consent(
    vault: Vault, item: tuple[str, str]
) -> None:
    case_id, item_id = item
    with pytest.raises(NotFound):
        download(vault, principal(vault, "lena"), item_id)
    grant(vault, principal(vault, "admin"), case_id, "lena", "lawyer")
    assert b"".join(download(vault, principal(vault, "lena"), item_id).chunks) == BODY
    assert [c.id for c in list_cases(vault, principal(vault, "lena"))] == [case_id]


def test_cases_are_listed_with_their_names_for_those_who_may_see_them(
    vault: Vault, item: tuple[str, str]
) -> None:
    case_id, _ = item
    assert [c.name for c in list_cases(vault, principal(vault, "admin"))] == ["Case of the river"]
    assert [c.id for c in list_cases(vault, principal(vault, "tina"))] == [case_id]
    assert list_cases(vault, principal(vault, "theo")) == []


def test_an_unknown_item_is_not_found(vault: Vault) -> None:
    with pytest.raises(NotFound):
        download(vault, principal(vault, "tina"), "nosuchitem")
